"""Filling the index by following the bank's own node, block by block, reorgs included.

Each `step` asks the node for its head and, when the index is behind, reads up to
`CHUNK` blocks' headers (JSON-RPC batches), then the registry's logs of those whose logs
bloom may hold the registry's address (`eth_getLogs` by block hash, so a log always
belongs to the header it was read with), checks every log (`checks`) and appends the
blocks and logs in one transaction. A block is appended only when its parent is the
index's tip; when the node's chain no longer holds the tip (a reorg), the follower walks
back to the last block both agree on and rolls the index back to it, so a record from a
block that left the canonical chain is never served. A reorg deeper than the blocks kept
rebuilds the index from the registry's first block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from orchestrator.errors import RpcRefused
from orchestrator.index.checks import check, decode
from orchestrator.index.node import NodeClient
from orchestrator.index.store import BlockRef, IndexedLog, IndexStore, Registry

log = logging.getLogger(__name__)

CHUNK = 200  # headers read per step while catching up
HEADER_BATCH = 100  # headers per JSON-RPC batch
LOG_BATCH = 8  # blocks' eth_getLogs per JSON-RPC batch (a full block holds ~1,000 logs)
WALK_BATCH = 32  # headers per batch while looking for the last block both chains share


@dataclass(frozen=True)
class Header:
    number: int
    hash: bytes
    parent: bytes
    bloom: bytes

    @property
    def ref(self) -> BlockRef:
        return BlockRef(self.number, self.hash, self.parent)


@dataclass(frozen=True)
class StepResult:
    head: int  # the node's head
    appended: int  # blocks appended
    logs: int  # logs appended
    rolled_back: int  # blocks rolled back
    more: bool  # the index is still behind the node's head


class Follower:
    """Fills `store` with `registry`'s logs from `node`. One thread steps it."""

    def __init__(self, store: IndexStore, node: NodeClient, registry: Registry) -> None:
        self.store = store
        self.node = node
        self.registry = registry
        self._address = bytes.fromhex(registry.address[2:])
        self._bloom_bits = _bloom_bits(self._address)
        self.appended = threading.Condition()  # notified after every append or rollback

    def step(self) -> StepResult:
        tip = self.store.tip()
        calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
        if tip is not None:
            calls.append(("eth_getBlockByNumber", [hex(tip.number), False]))
        answers = self.node.call(calls)
        head = int(answers[0], 16)
        if tip is not None:
            at_tip = answers[1]
            if at_tip is None and head >= tip.number:
                return StepResult(head, 0, 0, 0, more=True)  # the node moved meanwhile: again
            if at_tip is not None and _bytes(at_tip["hash"]) != tip.hash:
                return StepResult(head, 0, 0, self._roll_back(tip), more=True)
        start = self.registry.from_block if tip is None else tip.number + 1
        if start > head:
            return StepResult(head, 0, 0, 0, more=False)
        headers = self._headers(range(start, min(head, start + CHUNK - 1) + 1))
        if tip is not None and headers and headers[0].parent != tip.hash:
            return StepResult(head, 0, 0, self._roll_back(tip), more=True)
        logs = self._logs([h for h in headers if self._may_hold_logs(h)])
        self._check(logs)
        self.store.append([h.ref for h in headers], logs)
        with self.appended:
            self.appended.notify_all()
        last = headers[-1].number if headers else start - 1
        return StepResult(head, len(headers), len(logs), 0, more=last < head)

    # -- reading the node -------------------------------------------------------------
    def _headers(self, numbers: range) -> list[Header]:
        """Consecutive headers from the first of `numbers`, stopping at a missing one or
        where one's parent is not the one before (the node reorganised meanwhile)."""
        found: list[Header] = []
        for at in range(0, len(numbers), HEADER_BATCH):
            chunk = numbers[at : at + HEADER_BATCH]
            raws = self.node.call([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for raw in raws:
                if raw is None:
                    return found
                header = Header(
                    int(raw["number"], 16),
                    _bytes(raw["hash"]),
                    _bytes(raw["parentHash"]),
                    _bytes(raw["logsBloom"]),
                )
                if found and header.parent != found[-1].hash:
                    return found
                found.append(header)
        return found

    def _may_hold_logs(self, header: Header) -> bool:
        bloom = header.bloom
        return all(bloom[255 - bit // 8] >> (bit % 8) & 1 for bit in self._bloom_bits)

    def _logs(self, headers: Sequence[Header]) -> list[IndexedLog]:
        found: list[IndexedLog] = []
        for at in range(0, len(headers), LOG_BATCH):
            chunk = headers[at : at + LOG_BATCH]
            address = self.registry.address
            answers = self.node.call(
                [("eth_getLogs", [{"blockHash": _hex(h.hash), "address": address}]) for h in chunk]
            )
            for header, raws in zip(chunk, answers, strict=True):
                entries = [e for raw in raws or [] if (e := decode(raw)) is not None]
                if any(e.block_hash != header.hash for e in entries):
                    raise RpcRefused(
                        f"eth_getLogs of block {_hex(header.hash)} answered another block's logs",
                        obj=self.node.url,
                    )
                found += sorted(entries, key=lambda e: e.log_index)
        return found

    def _check(self, logs: Sequence[IndexedLog]) -> None:
        """Every log against its tradeline's previous one (kept, or earlier in `logs`)."""
        keys = list(dict.fromkeys(e.tradeline for e in logs))
        last: dict[tuple[bytes, bytes, bytes], IndexedLog] = dict(self.store.last_logs(keys))
        for entry in logs:
            check(entry, last.get(entry.tradeline))
            last[entry.tradeline] = entry

    # -- reorgs -------------------------------------------------------------------------
    def _roll_back(self, tip: BlockRef) -> int:
        """Roll the index back to the last block the node's chain still holds; the number
        of blocks dropped. A fork below what is kept rebuilds from the first block."""
        number = tip.number
        while number >= self.registry.from_block:
            low = max(self.registry.from_block, number - WALK_BATCH + 1)
            heights = list(range(number, low - 1, -1))
            raws = self.node.call([("eth_getBlockByNumber", [hex(n), False]) for n in heights])
            for height, raw in zip(heights, raws, strict=True):
                kept = self.store.block(height)
                if kept is None:
                    return self._rebuild(tip, f"no block kept at {height}")
                if raw is not None and _bytes(raw["hash"]) == kept.hash:
                    removed = self.store.rollback(height)
                    log.warning(
                        "reorg: the node's chain left block %d; rolled the index back %d "
                        "block(s) to %d (%d log(s) removed)",
                        tip.number, tip.number - height, height, removed,
                    )  # fmt: skip
                    with self.appended:
                        self.appended.notify_all()
                    return tip.number - height
            number = low - 1
        return self._rebuild(tip, "the registry's first block itself was replaced")

    def _rebuild(self, tip: BlockRef, why: str) -> int:
        log.warning("reorg below what the index keeps (%s): rebuilding it from block %d",
                    why, self.registry.from_block)  # fmt: skip
        self.store.reset(self.registry)
        with self.appended:
            self.appended.notify_all()
        return tip.number - self.registry.from_block + 1


def follow_until(follower: Follower, *, caught_up: bool = True, timeout: float = 60.0) -> int:
    """Step until the index reaches the node's head (tests, the benchmark, rebuilds);
    the head reached."""
    deadline = time.monotonic() + timeout
    while True:
        result = follower.step()
        if not result.more and caught_up:
            return result.head
        if time.monotonic() > deadline:
            raise TimeoutError(f"the index did not reach the node's head in {timeout}s")


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _bloom_bits(value: bytes) -> tuple[int, int, int]:
    """The three bits `value` sets in a 2048-bit logs bloom (the yellow paper's M3:2048)."""
    h = keccak(value)
    a, b, c = ((h[i] << 8 | h[i + 1]) & 2047 for i in (0, 2, 4))
    return a, b, c
