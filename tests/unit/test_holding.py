"""The identity's one owner (`agent.holding.IdentityHolder`): its fence says what
happened, measured against the lease's expiry — before it could expire, or, after a
pause, that it expired while the process was not running — whichever thread (the
watchdog, the lease loop) gets there first after the resume. The store is the real
embedded one; time is moved by moving the keeper's and the watchdog's clocks back."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.agent.holding import IdentityHolder
from orchestrator.agent.sealing import Sealer
from orchestrator.agent.status import AgentState
from orchestrator.config import Member
from orchestrator.geth.keys import follower_address
from orchestrator.network.leases import LeaseKeeper
from orchestrator.signer.policy import SigningPolicy
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault
from tests.helpers.stores import DelegatingStore

LEASE, MARGIN = 15, 6.5


class Agent:
    """What the holder calls back: the agent's state and its transitions."""

    def __init__(self) -> None:
        self.state = AgentState.SEALING
        self.messages: list[tuple[AgentState, str]] = []

    def transition(self, new: AgentState, message: str) -> None:
        self.state = new
        self.messages.append((new, message))


class CountingStore(DelegatingStore):
    renewals = 0

    def renew_lease(self, lease):  # type: ignore[no-untyped-def]
        self.renewals += 1
        return super().renew_lease(lease)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(LocalStore(tmp_path / "s.sqlite"))


def holding(store: CountingStore, tmp_path: Path) -> tuple[IdentityHolder, Agent]:
    agent = Agent()
    policy = SigningPolicy(follower=follower_address("bank-a-1"), block_period=2)
    holder = IdentityHolder(
        store=store, vault=LocalVault(tmp_path / "vault"), member="bank-a", node="bank-a-1",
        spec=Member(), lease_seconds=LEASE,
        sealer=Sealer(tmp_path / "geth.ipc", policy, needs_peers=lambda: True),
        metrics=AgentMetrics(), lock=threading.RLock(), state=lambda: agent.state,
        transition=agent.transition, write_status=lambda: None, signer_count=lambda: 4,
    )  # fmt: skip
    keeper = LeaseKeeper(
        store, "leases/bank-a/identity-0", duration=LEASE, holder="bank-a-1", margin=MARGIN
    )
    assert keeper.try_acquire()
    holder.keeper = keeper
    return holder, agent


def frozen(holder: IdentityHolder, seconds: float) -> None:
    """As if the whole process had been stopped for `seconds` just now."""
    assert holder.keeper is not None
    holder.keeper.renewed_at -= seconds
    holder._last_round -= seconds


def test_a_fence_in_time_states_the_real_margin(store: CountingStore, tmp_path: Path) -> None:
    holder, agent = holding(store, tmp_path)
    assert holder.keeper is not None
    holder.keeper.renewed_at -= LEASE - MARGIN + 1.0  # the store has not answered for 9.5 s
    holder.check_deadline()
    ((state, message),) = agent.messages
    assert state is AgentState.FENCED and holder.keeper is None
    assert message.startswith("could not renew leases/bank-a/identity-0 in time; stopped sealing")
    margin = re.search(r" (\d+\.\d)s before the lease can expire$", message)
    assert margin is not None, message
    assert 3.5 <= float(margin.group(1)) <= 5.5  # 5.5 s, less the time this test took


def test_after_a_pause_the_watchdog_says_the_lease_expired_while_not_running(
    store: CountingStore, tmp_path: Path
) -> None:
    holder, agent = holding(store, tmp_path)
    frozen(holder, 45)
    holder.check_deadline()
    ((state, message),) = agent.messages
    assert state is AgentState.FENCED
    assert re.fullmatch(
        r"the lease leases/bank-a/identity-0 expired 3\d\.\ds ago while this process was not "
        r"running \(paused or frozen for about 45s\); stopped sealing as it resumed",
        message,
    ), message
    assert "before the lease can expire" not in message
    assert holder.last_fence is not None and holder.last_fence.lease.endswith("identity-0")


def test_after_a_pause_the_lease_loop_fences_the_same_way_without_asking_the_store(
    store: CountingStore, tmp_path: Path
) -> None:
    holder, agent = holding(store, tmp_path)
    frozen(holder, 45)
    holder.keep(None, acquire=False, ready=False)  # the lease loop woke first
    ((state, message),) = agent.messages
    assert state is AgentState.FENCED
    assert re.search(r"expired 3\d\.\ds ago while this process was not running", message)
    assert store.renewals == 0  # an expired lease is not renewed
    holder.check_deadline()  # the watchdog, a moment later: nothing left to fence
    assert len(agent.messages) == 1


def test_a_renewal_in_time_keeps_the_identity(store: CountingStore, tmp_path: Path) -> None:
    holder, agent = holding(store, tmp_path)
    assert holder.keeper is not None
    holder.keeper.renewed_at -= LEASE / 3 + 0.1
    holder.keep(None, acquire=False, ready=False)
    assert store.renewals == 1 and agent.messages == [] and holder.keeper is not None
