"""Following the chain from the bank's own node, over plain JSON-RPC (what its balancer
passes): every block's number, hash, parent, time, transaction count and signer
(`geth.clique.block_signer`), into the history; and reorgs, when a block the monitor
knew is no longer on the node's chain.

The first poll backfills the history window (blocks in JSON-RPC batches); later polls
fetch what is new. A reorg is found by walking back from the known head until the
stored hash matches the node's again: its depth is the number of blocks replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import requests

from orchestrator.errors import NodeUnreachable
from orchestrator.geth.clique import IN_TURN, block_signer
from orchestrator.monitor.history import Block, History, Reorg

log = logging.getLogger(__name__)

BATCH = 100
MAX_REORG = 64  # deeper than this, the window is read again from the node


class ChainFollower:
    def __init__(
        self, rpc_url: str, history: History, *, backfill: int, timeout: float = 5.0
    ) -> None:
        self.rpc_url = rpc_url
        self.history = history
        self.backfill = backfill  # blocks to read on the first poll
        self.timeout = timeout
        self._session = requests.Session()
        self.polled_at: float | None = None  # unix time of the last poll the node answered

    def close(self) -> None:
        self._session.close()

    def _call(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        try:
            response = self._session.post(self.rpc_url, json=body, timeout=self.timeout)
            answers = response.json()
        except (requests.RequestException, ValueError) as e:
            raise NodeUnreachable(
                f"the bank's node did not answer: {type(e).__name__}",
                obj=self.rpc_url,
                hint="check that the node (or its balancer) runs; the monitor keeps trying",
            ) from e
        if not isinstance(answers, list):
            raise NodeUnreachable(
                f"not a JSON-RPC batch answer: {answers!r:.200}", obj=self.rpc_url
            )
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        return [by_id.get(i, {}).get("result") for i in range(len(calls))]

    def _blocks(self, numbers: Sequence[int]) -> list[Block]:
        found = []
        for start in range(0, len(numbers), BATCH):
            chunk = numbers[start : start + BATCH]
            results = self._call([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for raw in results:
                if isinstance(raw, dict):
                    found.append(_block(raw))
        return found

    def poll(self) -> int:
        """Read what is new; the node's head."""
        (head_hex,) = self._call([("eth_blockNumber", [])])
        if not isinstance(head_hex, str):
            raise NodeUnreachable("eth_blockNumber gave no answer", obj=self.rpc_url)
        head = int(head_hex, 16)
        known = self.history.head()
        if known is not None and known.number > head:
            known = self.history.block(head)  # the node is behind what we saw: compare there
        start = self._check_reorg(known) if known else max(0, head - self.backfill)
        if start <= head:
            self.history.add_blocks(self._blocks(list(range(start, head + 1))))
        self.polled_at = time.time()
        return head

    def _check_reorg(self, known: Block) -> int:
        """The first height to (re)read: above the last block both agree on."""
        number, replaced_by = known.number, ""
        while number >= max(0, known.number - MAX_REORG):
            stored = self.history.block(number)
            (raw,) = self._call([("eth_getBlockByNumber", [hex(number), False])])
            if stored is None or not isinstance(raw, dict) or raw["hash"] == stored.hash:
                break
            number, replaced_by = number - 1, str(raw["hash"])
        if number < known.number:
            old = self.history.block(number + 1)
            depth = known.number - number
            reorg = Reorg(time.time(), number + 1, depth, old.hash if old else "", replaced_by)
            log.warning("reorg: %d block(s) from height %d replaced", depth, number + 1)
            self.history.replace_from(number + 1, reorg)
        return number + 1


def _block(raw: dict[str, Any]) -> Block:
    return Block(
        number=int(raw["number"], 16),
        hash=str(raw["hash"]),
        parent=str(raw["parentHash"]),
        time=int(raw["timestamp"], 16),
        txs=len(raw.get("transactions") or []),
        signer=block_signer(raw),
        in_turn=int(raw["difficulty"], 16) == IN_TURN,
    )
