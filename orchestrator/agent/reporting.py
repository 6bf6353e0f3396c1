"""What an agent tells about its node: the heartbeat it writes to the bank's store (the
monitor keeps their history and compares hashes) and the `/health` answer its bank's
balancer asks for every second.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.agent.paths import NodePaths
from orchestrator.boundaries import Store
from orchestrator.geth.health import node_problems
from orchestrator.geth.ipc import ipc_probe
from orchestrator.network.names import heartbeat_blob


class NodeReport:
    """`facts()` gives the agent's side of a report: node, member, state, leader,
    signer, sealing."""

    def __init__(
        self,
        paths: NodePaths,
        *,
        node: str,
        member: str,
        store: Store,
        metrics: AgentMetrics,
        facts: Callable[[], dict[str, Any]],
    ) -> None:
        self.paths, self.node, self.member = paths, node, member
        self.store, self.metrics, self._facts = store, metrics, facts

    def snapshot(self, *, timeout: float, ask_geth: bool = True) -> dict[str, Any]:
        """This node now, for its heartbeat and /health (the monitor compares hashes)."""
        ipc, latest = self.paths.ipc, ["latest", False]
        head = ipc_probe(ipc, "eth_getBlockByNumber", latest, timeout=timeout) if ask_geth else {}
        head = head if isinstance(head, dict) else {}
        return {
            **self._facts(),
            "block": int(head["number"], 16) if head else None,
            "hash": head.get("hash"),
        }

    def heartbeat(self) -> None:
        body = self.snapshot(timeout=2.0)
        peers = ipc_probe(self.paths.ipc, "net_peerCount", [], timeout=2.0)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        body.update(peers=int(peers, 16) if isinstance(peers, str) else None, time=now)
        self.store.write(
            heartbeat_blob(self.member, self.node), json.dumps(body, sort_keys=True).encode()
        )
        if body["block"] is not None:
            self.metrics.chain(body["block"], body["peers"] or 0)

    def health(
        self, *, geth_state: str | None, needs_peers: bool, ending: bool
    ) -> tuple[bool, dict[str, Any]]:
        """For the balancer: geth runs, answers, is synced and has a peer if it needs one."""
        running = geth_state == "RUNNING"
        body = self.snapshot(timeout=1.0, ask_geth=running)
        body["geth"] = geth_state or "NOT_STARTED"
        body["problems"] = node_problems(self.paths.ipc, needs_peers, body["block"], running)
        return not body["problems"] and not ending, body
