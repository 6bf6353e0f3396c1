"""What a read index keeps, and the interface every database behind it implements.

The index holds the registry's logs in chain order and the hashes of the blocks it has
read. Only blocks of the node's canonical chain are ever in it: the follower appends a
block only when its parent is the last block kept, and rolls back (`rollback`) when the
node's chain no longer agrees. Every log kept has passed `checks` against the state of
its tradeline before it.

`IndexStore` is a `typing.Protocol`: the embedded SQLite database (`index.sqlite`) is the
default; a server database (PostgreSQL, say) implements the same methods. Implementations
are safe for one writer (the follower) and many readers (the HTTP threads) at once, and a
read (`read`) sees one consistent state: the logs up to the block it reports, none after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class Kind(IntEnum):
    """The registry's two events."""

    REPORTED = 0
    DISPUTE_CHANGED = 1


@dataclass(frozen=True)
class BlockRef:
    """A block the index has read: its number, hash and parent hash (32 bytes each)."""

    number: int
    hash: bytes
    parent: bytes


@dataclass(frozen=True)
class IndexedLog:
    """One registry log as kept: where it is on chain, whose tradeline it changes, and
    its data exactly as the contract emitted it (the topics follow from `kind`, `subject`,
    `furnisher` and, for a dispute change, `ref`)."""

    block_number: int
    block_hash: bytes
    log_index: int
    tx_hash: bytes
    kind: Kind
    subject: bytes  # 32 bytes
    furnisher: bytes  # 20 bytes
    ref: bytes  # 32 bytes, the account reference
    data: bytes

    @property
    def tradeline(self) -> tuple[bytes, bytes, bytes]:
        return self.subject, self.furnisher, self.ref


@dataclass(frozen=True)
class Registry:
    """Which registry an index holds: its address and the block it was deployed in."""

    address: str  # checksummed
    from_block: int


@dataclass(frozen=True)
class SubjectRead:
    """A subject's logs, oldest first, as of block `tip` (None: nothing indexed yet)."""

    tip: BlockRef | None
    logs: list[IndexedLog]


class IndexStore(Protocol):
    def registry(self) -> Registry | None:
        """The registry this index holds (None: a new, empty index)."""
        ...

    def reset(self, registry: Registry) -> None:
        """Forget everything and hold `registry` from now on (a rebuild starts here)."""
        ...

    def tip(self) -> BlockRef | None:
        """The last block appended (None: none yet)."""
        ...

    def block(self, number: int) -> BlockRef | None:
        """A kept block (the last `keep_blocks` and every block with a log are kept)."""
        ...

    def last_logs(
        self, tradelines: Sequence[tuple[bytes, bytes, bytes]]
    ) -> dict[tuple[bytes, bytes, bytes], IndexedLog]:
        """The last kept log of each (subject, furnisher, ref); tradelines without one are
        left out."""
        ...

    def append(self, blocks: Sequence[BlockRef], logs: Sequence[IndexedLog]) -> None:
        """Add consecutive blocks (the first one's parent is the tip) and their logs, in
        chain order, all or nothing."""
        ...

    def rollback(self, number: int) -> int:
        """Forget every block above `number` and its logs; how many logs were removed."""
        ...

    def read(self, subject: bytes, furnisher: bytes | None = None) -> SubjectRead:
        """The subject's logs (one furnisher's, with `furnisher`) and the tip they are as
        of, from one consistent state."""
        ...

    def counts(self) -> Mapping[str, int]:
        """{"logs": ..., "blocks": ...} kept, for the status and metrics."""
        ...

    def close(self) -> None: ...
