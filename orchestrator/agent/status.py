"""What a node's agent tells the world about itself: two typed, versioned records.

    <node>/agent.json    AgentStatus: the agent's state, its leases, its last fence
    <node>/status.json   GethStatus: the supervision of geth (pids, restarts)

The agent writes them atomically on every transition; `poactl status`, `poactl down`,
`poactl up` (while it waits) and a supervisor that restarts read them back through
`read`, which refuses a record it does not understand with a message instead of
guessing. Every state a record can hold is in its enum; both share one version.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.config import Strict
from orchestrator.errors import StateError
from orchestrator.network.leases import LeaseKeeper
from orchestrator.statefile import write_json_atomic

STATUS_VERSION: Literal[1] = 1


class AgentState(enum.StrEnum):
    BOOTING = "BOOTING"
    WAITING_FOR_NETWORK = "WAITING_FOR_NETWORK"
    FOLLOWING = "FOLLOWING"
    SEALING = "SEALING"
    FENCED = "FENCED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FATAL = "FATAL"
    # Never written by an agent: what a reader sees when the record names a live state
    # but no agent holds the node's lock any more (it was killed).
    DEAD = "DEAD"


_ENDINGS = frozenset({AgentState.STOPPING, AgentState.FATAL})
ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    AgentState.BOOTING: frozenset({AgentState.WAITING_FOR_NETWORK}) | _ENDINGS,
    AgentState.WAITING_FOR_NETWORK: frozenset({AgentState.FOLLOWING}) | _ENDINGS,
    AgentState.FOLLOWING: frozenset({AgentState.SEALING}) | _ENDINGS,
    AgentState.SEALING: frozenset({AgentState.FENCED, AgentState.FOLLOWING}) | _ENDINGS,
    AgentState.FENCED: frozenset({AgentState.SEALING, AgentState.FOLLOWING}) | _ENDINGS,
    AgentState.STOPPING: frozenset({AgentState.STOPPED, AgentState.FATAL}),
    AgentState.STOPPED: frozenset(),
    AgentState.FATAL: frozenset(),
    AgentState.DEAD: frozenset(),
}
ENDED = frozenset({AgentState.STOPPED, AgentState.FATAL, AgentState.DEAD})
ENDING = _ENDINGS  # an agent in these states is going away: unhealthy


class GethState(enum.StrEnum):
    """The supervision of one geth: STOPPED -> STARTING -> RUNNING -> BACKOFF -> ..."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    FATAL = "FATAL"


GETH_ALLOWED: dict[GethState, frozenset[GethState]] = {
    GethState.STOPPED: frozenset({GethState.STARTING}),
    GethState.STARTING: frozenset(
        {GethState.RUNNING, GethState.BACKOFF, GethState.STOPPING, GethState.FATAL}
    ),
    GethState.RUNNING: frozenset(
        {GethState.BACKOFF, GethState.STOPPING, GethState.STARTING, GethState.FATAL}
    ),
    GethState.BACKOFF: frozenset({GethState.STARTING, GethState.FATAL, GethState.STOPPING}),
    GethState.STOPPING: frozenset({GethState.STOPPED}),
    GethState.FATAL: frozenset(),
}


class IdentityStatus(Strict):
    """The validator identity an agent holds, and its lease's clock (unix times)."""

    index: int
    signer: str
    lease_renewed_at: float  # when the last renewal was sent
    fence_at: float  # when the agent stops sealing unless it renews first
    lease_expires_by: float


def identity_status(index: int, signer: str, keeper: LeaseKeeper) -> IdentityStatus:
    """The held identity with its lease's clock as `keeper` counts it."""
    renewed, duration = keeper.renewed_wall, keeper.duration
    return IdentityStatus(
        index=index,
        signer=signer,
        lease_renewed_at=renewed,
        fence_at=renewed + duration - keeper.margin,
        lease_expires_by=renewed + duration,
    )


class FenceRecord(Strict):
    at: float
    lease: str
    lease_expires_by: float


class CliqueStatus(Strict):
    """Governance's decided validators, Clique's signers, and this node's votes in flight
    (address -> true to add, false to drop), as of its last reconciliation."""

    decided: list[str] | None  # None: the chain has no governance contract
    signers: list[str]
    voting: dict[str, bool]


class AgentStatus(Strict):
    """`agent.json`."""

    version: Literal[1] = STATUS_VERSION
    node: str
    member: str
    role: Literal["validator", "rpc"]
    state: AgentState
    since: str  # ISO 8601, UTC
    pid: int
    leader: bool
    identity: IdentityStatus | None
    last_fence: FenceRecord | None
    sealing: bool
    fences: int
    rpc_url: str
    health_url: str
    message: str
    clique: CliqueStatus | None = None  # while sealing: see orchestrator.agent.votes

    def seen(self, *, running: bool) -> AgentState:
        """The state as a reader should report it: DEAD when the record names a live
        state but no agent runs the node any more."""
        if self.state in (AgentState.STOPPED, AgentState.FATAL) or running:
            return self.state
        return AgentState.DEAD


class GethStatus(Strict):
    """`status.json`."""

    version: Literal[1] = STATUS_VERSION
    node: str
    state: GethState
    since: str
    supervisor_pid: int
    geth_pid: int | None
    restarts: int
    sealing: bool
    last_exit_code: int | None
    message: str


Record = TypeVar("Record", bound=BaseModel)


def write(path: Path, record: BaseModel) -> None:
    write_json_atomic(path, record.model_dump(mode="json"))


def read(path: Path, kind: type[Record]) -> Record | None:
    """The record in `path`, or None when there is none yet (a normal answer)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return kind.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise StateError(
            f"not a {kind.__name__} record of version {STATUS_VERSION}: {where}: {first['msg']}",
            obj=str(path),
            hint="a newer or older poactl wrote it, or it was edited; stop that agent "
            "(`poactl down`) and start it with this poactl, which rewrites it",
        ) from e
