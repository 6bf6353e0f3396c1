"""What `poactl status` reports: each node's state and health, judged across nodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import NodeSpec
from orchestrator.health import NodeHealth

MAX_LAG_BLOCKS = 2  # a node further behind the highest node is not healthy


@dataclass(frozen=True)
class NodeStatus:
    spec: NodeSpec
    signer: str | None
    state: str
    sealing: bool
    health: NodeHealth
    behind: int = 0  # blocks behind the highest node of the consortium
    chain_stalled_for: float | None = None  # set when no node has a recent block

    @property
    def problems(self) -> list[str]:
        found = list(self.health.problems)
        if self.behind > MAX_LAG_BLOCKS:
            found.append(f"{self.behind} blocks behind the head")
        if self.chain_stalled_for is not None:
            found.append(f"chain not advancing: newest block is {self.chain_stalled_for:.0f}s old")
        return found

    @property
    def healthy(self) -> bool:
        return self.state == "RUNNING" and self.health.reachable and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "member": self.spec.member,
            "role": self.spec.role,
            "rpc_url": self.spec.rpc_url,
            "signer": self.signer,
            "block": self.health.block,
            "peers": self.health.peers,
            "healthy": self.healthy,
            "state": self.state,
            "sealing": self.sealing,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class ConsortiumStatus:
    chain_id: int
    state_dir: Path
    nodes: list[NodeStatus]

    @property
    def healthy(self) -> bool:
        return all(n.healthy for n in self.nodes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "state_dir": str(self.state_dir),
            "nodes": [n.as_dict() for n in self.nodes],
        }
