"""Settling a Clique fork that geth cannot settle by itself: two branches of equal total
difficulty, each side stalled.

After a partition of two banks with two signers each heals, each side may have sealed
its own blocks: bank-a block 9 in turn (difficulty 2), bank-b blocks 9' and 10' out of
turn (1 + 1). Both branches weigh the same, so no node syncs the other's (geth syncs
only toward a peer of higher total difficulty), and every signer is "recently signed"
on its own branch: the chain stalls for good (Clique's known liveness hole; EIP-3436).

Every agent applies the same choice to what it sees — its own head and the heads in the
other nodes' heartbeats (number, hash, total difficulty) — following EIP-3436's
"Expanded Clique Block Choice Rule" (https://eips.ethereum.org/EIPS/eip-3436): the
highest total difficulty, then the lowest block number, then the lowest hash read as an
unsigned 256-bit integer. (Its third rule, the most recently in-turn signer, is left
out: it needs each head's signer; the first, second and fourth already name one branch
everywhere.) The agent of a node on a losing branch, and only it for its own node,
rewinds its own head by one block (`debug_setHead`, over IPC): its total difficulty is
then lower than the winner's and geth's next sync round moves it onto the winning
branch. The transactions of the block it drops are sent to its pool again (geth's pool
re-injects a reorg's, but not a `setHead`'s, `core/txpool/legacypool.reset`), so no
acknowledged write is lost; a node that seals first pauses its miner, so it does not
seal the dropped height again on its own branch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.geth.ipc import ipc_probe, ipc_request
from orchestrator.geth.lag import Head

log = logging.getLogger(__name__)

SYNC_CYCLE_SECONDS = 10.0  # geth syncs with fewer than five peers this often (eth/sync.go)


@dataclass(frozen=True)
class Fork:
    """Heads of equal total difficulty that differ; `winner` by EIP-3436's order."""

    own: Head
    winner: Head
    rivals: tuple[Head, ...]  # every other head of the highest total difficulty

    @property
    def own_loses(self) -> bool:
        return self.own.hash != self.winner.hash


def _rank(head: Head) -> tuple[int, int, int]:
    """Sort key: the best head first (highest TD, lowest number, lowest hash)."""
    return (-(head.td or 0), head.number, int(head.hash or "0x0", 16))


def equal_weight_fork(own: Head, others: Iterable[Head]) -> Fork | None:
    """The fork `own` is part of: other heads as heavy as the heaviest one, with another
    hash (None when there is none, or when own's total difficulty is unknown)."""
    if own.td is None or own.hash is None:
        return None
    known = [h for h in others if h.td is not None and h.hash is not None]
    heaviest = max([own.td, *(h.td for h in known if h.td is not None)])
    tied = {h.hash: h for h in known if h.td == heaviest and h.hash != own.hash}
    if own.td != heaviest or not tied:
        return None  # a heavier branch exists: geth syncs to it by itself
    candidates = sorted([own, *tied.values()], key=_rank)
    return Fork(own=own, winner=candidates[0], rivals=tuple(tied.values()))


def rewind_to_lose(ipc: Path, fork: Fork) -> None:
    """Step this node off the losing branch: drop its head block, give that block's
    transactions back to its pool, so its next sync round takes the winning branch."""
    own = fork.own
    block: Any = ipc_probe(ipc, "eth_getBlockByNumber", [hex(own.number), False])
    if not isinstance(block, dict) or block.get("hash") != own.hash:
        return  # the head moved meanwhile: nothing to settle now
    raws = [
        raw
        for tx in block.get("transactions") or []
        if isinstance(raw := ipc_probe(ipc, "eth_getRawTransactionByHash", [tx]), str)
    ]
    log.warning(
        "a fork of equal weight (total difficulty %s): this node's head %d %s loses to "
        "%d %s (%s) by EIP-3436's order; rewinding to %d so it syncs the winning branch "
        "(%d transaction(s) go back to the pool)",
        own.td, own.number, own.hash, fork.winner.number, fork.winner.hash,
        fork.winner.source, own.number - 1, len(raws),
    )  # fmt: skip
    ipc_request(ipc, "debug_setHead", [hex(own.number - 1)])
    for raw in raws:  # already known or included elsewhere: geth says so, nothing lost
        ipc_probe(ipc, "eth_sendRawTransaction", [raw])
