"""The agent's state machine (its transition table) and the fencing margin arithmetic."""

from __future__ import annotations

import pytest

from orchestrator.agent.fencing import fence_margin
from orchestrator.agent.settings import AgentFile
from orchestrator.agent.status import ALLOWED, AgentState, AgentStatus
from orchestrator.boundaries import LEASE_MAX_SECONDS, LEASE_MIN_SECONDS
from orchestrator.config import load_config

S = AgentState

# -- the transition table -------------------------------------------------------------


def test_every_state_has_a_row_and_every_target_is_a_state() -> None:
    assert set(ALLOWED) == set(AgentState)
    for targets in ALLOWED.values():
        assert targets <= set(AgentState)


def test_no_state_transitions_to_itself() -> None:
    """Staying put is not a transition (the agent rewrites its message in place)."""
    for state, targets in ALLOWED.items():
        assert state not in targets


@pytest.mark.parametrize("terminal", [S.FATAL, S.STOPPED])
def test_fatal_and_stopped_are_terminal(terminal: AgentState) -> None:
    assert ALLOWED[terminal] == frozenset()


def test_stopping_ends_stopped_or_fatal() -> None:
    assert ALLOWED[S.STOPPING] == frozenset({S.STOPPED, S.FATAL})


@pytest.mark.parametrize(
    "state", [S.BOOTING, S.WAITING_FOR_NETWORK, S.FOLLOWING, S.SEALING, S.FENCED]
)
def test_every_running_state_can_stop_or_fail(state: AgentState) -> None:
    assert {S.STOPPING, S.FATAL} <= ALLOWED[state]


def test_stopped_is_reached_only_through_stopping() -> None:
    assert [s for s, targets in ALLOWED.items() if S.STOPPED in targets] == [S.STOPPING]


@pytest.mark.parametrize(
    ("before", "after", "allowed"),
    [
        (S.BOOTING, S.WAITING_FOR_NETWORK, True),
        (S.WAITING_FOR_NETWORK, S.FOLLOWING, True),
        (S.FOLLOWING, S.SEALING, True),  # took an identity lease
        (S.SEALING, S.FENCED, True),  # could not renew in time
        (S.SEALING, S.FOLLOWING, True),
        (S.FENCED, S.SEALING, True),  # holds a lease again
        (S.FENCED, S.FOLLOWING, True),
        (S.FOLLOWING, S.FENCED, False),  # nothing to fence without a lease
        (S.BOOTING, S.SEALING, False),  # no sealing before the network is known
        (S.BOOTING, S.FOLLOWING, False),
        (S.WAITING_FOR_NETWORK, S.SEALING, False),  # geth is not even running
        (S.WAITING_FOR_NETWORK, S.FENCED, False),
        (S.STOPPING, S.SEALING, False),
        (S.STOPPED, S.BOOTING, False),
        (S.FATAL, S.STOPPING, False),
    ],
)
def test_transitions(before: AgentState, after: AgentState, allowed: bool) -> None:
    assert (after in ALLOWED[before]) is allowed


def test_sealing_is_entered_only_from_following_or_fenced() -> None:
    """Sealing needs a running geth (FOLLOWING) and a lease just taken."""
    assert {s for s, targets in ALLOWED.items() if S.SEALING in targets} == {
        S.FOLLOWING,
        S.FENCED,
    }


def test_fenced_is_entered_only_from_sealing() -> None:
    assert [s for s, targets in ALLOWED.items() if S.FENCED in targets] == [S.SEALING]


def test_every_state_but_dead_is_reachable_from_booting() -> None:
    seen, todo = {S.BOOTING}, [S.BOOTING]
    while todo:
        for nxt in ALLOWED[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(AgentState) - {S.DEAD}


def test_dead_is_never_a_transition_only_what_a_reader_sees() -> None:
    """An agent never writes DEAD; a record naming a live state whose agent is gone
    reads as DEAD, and a record that ended stays what it was."""
    assert not any(S.DEAD in targets for targets in ALLOWED.values())
    record = AgentStatus(
        node="bank-a-1", member="bank-a", role="validator", state=S.SEALING,
        since="2026-01-01T00:00:00+00:00", pid=1, leader=False, identity=None,
        last_fence=None, sealing=True, fences=0, rpc_url="http://127.0.0.1:8545",
        health_url="http://127.0.0.1:8745/health", message="",
    )  # fmt: skip
    assert record.seen(running=True) is S.SEALING
    assert record.seen(running=False) is S.DEAD
    stopped = record.model_copy(update={"state": S.STOPPED})
    assert stopped.seen(running=False) is S.STOPPED


# -- fence_margin ------------------------------------------------------------------------


def _wiggle(signers: int) -> float:
    """Clique's largest out-of-turn delay: 500 ms times (signers/2 + 1)."""
    return 0.5 * (signers // 2 + 1)


@pytest.mark.parametrize(
    ("period", "signers", "margin"),
    [
        (2, 1, 5.5),  # 2 + 0.5 * 1 + 3
        (2, 4, 6.5),  # 2 + 0.5 * 3 + 3
        (2, 5, 6.5),  # 5 // 2 + 1 == 3
        (1, 2, 5.0),
        (5, 10, 11.0),
    ],
)
def test_fence_margin_values(period: int, signers: int, margin: float) -> None:
    assert fence_margin(period, signers) == pytest.approx(margin)


@pytest.mark.parametrize("signers", [1, 2, 4, 7, 16])
@pytest.mark.parametrize("period", [1, 2, 5])
def test_fence_margin_covers_one_period_plus_the_wiggle(period: int, signers: int) -> None:
    assert fence_margin(period, signers) >= period + _wiggle(signers)


def test_fence_margin_grows_with_period_and_signers() -> None:
    assert fence_margin(3, 4) > fence_margin(2, 4)
    assert fence_margin(2, 6) > fence_margin(2, 4)


def test_the_default_consortium_fences_before_its_lease_can_expire() -> None:
    """Default: period 2, 4 signers, lease 15 s, renewed every third of the lease."""
    c = load_config()
    period, signers = c.settings.block_period, c.identities
    lease = c.settings.supervision.lease_seconds
    assert (period, signers, lease) == (2, 4, 15)
    assert AgentFile.model_fields["lease_seconds"].default == lease  # agent.yaml agrees

    margin = fence_margin(period, signers)
    fence_after = lease - margin  # seconds after the last renewal was *sent*
    renew_after = lease / 3
    assert margin >= period + _wiggle(signers)
    assert 0 < renew_after < fence_after < lease
    # A renewal that fails once is retried (the lease loop runs twice a second) before
    # the fence: a single store hiccup does not stop sealing.
    assert fence_after - renew_after >= 2.0
    assert fence_after == pytest.approx(8.5)


@pytest.mark.parametrize("lease", [LEASE_MIN_SECONDS, 30, LEASE_MAX_SECONDS])
def test_with_period_2_and_4_signers_every_allowed_lease_renews_before_it_fences(
    lease: int,
) -> None:
    margin = fence_margin(2, 4)
    assert lease / 3 < lease - margin


def test_a_lease_too_short_for_the_fence_margin_is_refused_with_the_length_needed() -> None:
    from orchestrator.agent.fencing import check_lease_fits
    from orchestrator.errors import ConfigError

    check_lease_fits(2, 4, 15)  # the default fits
    with pytest.raises(ConfigError) as caught:
        check_lease_fits(10, 4, 15)
    message = str(caught.value)
    assert "supervision.lease_seconds" in message and "at least 24" in message
    check_lease_fits(10, 4, 24)
    with pytest.raises(ConfigError, match="shorten block_period"):
        check_lease_fits(60, 4, 60)
