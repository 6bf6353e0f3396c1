"""What `poactl status` reports: each node's state and health, judged across nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.agent.status import AgentState, CliqueStatus
from orchestrator.config import NodeSpec
from orchestrator.geth.health import NodeHealth
from orchestrator.geth.lag import Assessment

WORKING_STATES = (AgentState.FOLLOWING, AgentState.SEALING)  # a node that does its job


@dataclass(frozen=True)
class LeaseRow:
    """Who holds one of a member's leases (None: nobody right now)."""

    member: str
    lease: str  # "leader" or "identity-<i>"
    signer: str | None  # the identity's signer address
    holder: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"member": self.member, "lease": self.lease, "signer": self.signer,
                "holder": self.holder}  # fmt: skip


@dataclass(frozen=True)
class NodeStatus:
    spec: NodeSpec
    signer: str | None
    state: AgentState
    sealing: bool
    health: NodeHealth
    chain: Assessment | None = None  # its lag and the chain's progress, across nodes
    leader: bool = False  # holds its member's leader lease
    clique: CliqueStatus | None = None  # a sealing agent's last reconciliation of votes

    @property
    def problems(self) -> list[str]:
        found = list(self.health.problems)
        if self.chain is not None:
            found += self.chain.node_problems + self.chain.chain_problems
        return found

    @property
    def behind(self) -> int:
        """Blocks behind the highest node of the consortium."""
        return self.chain.behind or 0 if self.chain is not None else 0

    @property
    def healthy(self) -> bool:
        return self.state in WORKING_STATES and self.health.reachable and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "member": self.spec.member,
            "role": self.spec.role,
            "rpc_url": self.spec.rpc_url,
            "signer": self.signer,
            "block": self.health.block,
            "peers": self.health.peers,
            "behind": self.behind,
            "healthy": self.healthy,
            "state": self.state.value,
            "sealing": self.sealing,
            "leader": self.leader,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class ConsortiumStatus:
    chain_id: int
    state_dir: Path
    nodes: list[NodeStatus]
    leases: list[LeaseRow] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)  # member, url, running
    balancers: list[dict[str, Any]] = field(default_factory=list)  # url, token file, rotation
    indexes: list[dict[str, Any]] = field(default_factory=list)  # url, block, behind, problems

    @property
    def validators(self) -> dict[str, Any] | None:
        """Governance's decided validators, Clique's sealing signers and each sealing
        node's votes in flight, from the agents' last reconciliations (None: no agent
        seals, or the chain has no governance contract)."""
        seen = [(n.spec.name, n.clique) for n in self.nodes if n.clique and n.sealing]
        known = [(name, c) for name, c in seen if c.decided is not None]
        if not known:
            return None
        decided, signers = known[0][1].decided, known[0][1].signers
        return {
            "decided": decided,
            "sealing": signers,
            "match": sorted(map(str.lower, decided or [])) == sorted(map(str.lower, signers)),
            "votes": {name: c.voting for name, c in known if c.voting},
        }

    @property
    def healthy(self) -> bool:
        """Every node does its job, every validator identity is held and every bank's
        read index runs, within a few blocks of its node, with no refused log."""
        identities_held = all(r.holder for r in self.leases if r.lease != "leader")
        indexes_fine = not any(i["problems"] for i in self.indexes)
        return all(n.healthy for n in self.nodes) and identities_held and indexes_fine

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "state_dir": str(self.state_dir),
            "nodes": [n.as_dict() for n in self.nodes],
            "leases": [r.as_dict() for r in self.leases],
            "monitors": self.monitors,
            "balancers": self.balancers,
            "indexes": self.indexes,
            "validators": self.validators,
        }
