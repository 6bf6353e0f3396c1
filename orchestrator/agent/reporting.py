"""What an agent tells about its node: the heartbeat it writes to the bank's store (the
monitor keeps their history and compares hashes, the other agents compare heads) and
the `/health` answer its bank's balancer asks for every second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.agent.chainview import ChainView
from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.agent.paths import NodePaths
from orchestrator.boundaries import Store
from orchestrator.geth.health import node_problems, sync_heads
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.lag import Head
from orchestrator.network.heartbeats import write_heartbeat


class NodeReport:
    """`facts()` gives the agent's side of a report: node, member, state, leader,
    signer, sealing."""

    def __init__(
        self,
        paths: NodePaths,
        *,
        store: Store,
        metrics: AgentMetrics,
        chain: ChainView,
        facts: Callable[[], dict[str, Any]],
    ) -> None:
        self.paths, self.store, self.metrics = paths, store, metrics
        self.chain, self._facts = chain, facts

    def snapshot(self, *, timeout: float, ask_geth: bool = True) -> dict[str, Any]:
        """This node now, for its heartbeat and /health (the monitor compares hashes)."""
        ipc, latest = self.paths.ipc, ["latest", False]
        head = ipc_probe(ipc, "eth_getBlockByNumber", latest, timeout=timeout) if ask_geth else {}
        head = head if isinstance(head, dict) else {}
        return {
            **self._facts(),
            "block": int(head["number"], 16) if head else None,
            "hash": head.get("hash"),
            "block_time": int(head["timestamp"], 16) if head else None,
            "td": int(head["totalDifficulty"], 16) if head.get("totalDifficulty") else None,
        }

    def heartbeat(self, *, ask_geth: bool = True, message: str | None = None) -> None:
        """Write this node's heartbeat (`message`: why it ended, on its last one)."""
        body = self.snapshot(timeout=2.0, ask_geth=ask_geth)
        peers = ipc_probe(self.paths.ipc, "net_peerCount", [], timeout=2.0) if ask_geth else None
        now = datetime.now(UTC).isoformat(timespec="seconds")
        body.update(peers=int(peers, 16) if isinstance(peers, str) else None, time=now)
        if message:
            body["message"] = message[:500]
        write_heartbeat(self.store, body)
        if body["block"] is not None:
            self.metrics.chain(body["block"], body["peers"] or 0)

    def health(
        self, *, geth_state: str | None, needs_peers: bool, ending: bool
    ) -> tuple[bool, dict[str, Any]]:
        """For the balancer: geth runs, answers, has a peer if it needs one, and does not
        lag behind the other nodes' heads or its own sync's highest block."""
        running = geth_state == "RUNNING"
        now = time.time()
        body = self.snapshot(timeout=1.0, ask_geth=running)
        body["geth"] = geth_state or "NOT_STARTED"
        problems = node_problems(self.paths.ipc, needs_peers, body["block"], running)
        if running and body["block"] is not None:
            sync = sync_heads(ipc_probe(self.paths.ipc, "eth_syncing", [], timeout=1.0), now)
            own = Head(body["block"], now, body["block_time"], "this node")
            chain = self.chain.assess(own, [sync[1]] if sync else [], now)
            problems += chain.node_problems
            body.update(chain_head=chain.top, behind=chain.behind)
        body["problems"] = problems
        return not problems and not ending, body
