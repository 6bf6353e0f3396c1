"""What the agent does about a node stuck behind its peers or a stalled chain
(`agent.recovery.StuckRecovery`): observations and time in, an action out."""

from __future__ import annotations

from orchestrator.agent.recovery import Action, StuckRecovery
from orchestrator.geth.lag import Assessment, Head, assess

PERIOD = 2


def stuck_for(seconds: float, now: float) -> Assessment:
    """The node at 246 since `now - seconds`, the others at 290."""
    return assess(
        Head(246, now, now - 90), [Head(290, now, now - 1)], now=now, period=PERIOD,
        own_since=now - seconds,
    )  # fmt: skip


def level(now: float) -> Assessment:
    return assess(Head(290, now, now - 1), [Head(290, now, now - 1)], now=now, period=PERIOD)


def stalled(now: float) -> Assessment:
    return assess(Head(290, now, now - 30), [Head(290, now, now - 30)], now=now, period=PERIOD)


def run(policy: StuckRecovery, seconds: float, chain: object, *, start: float = 0.0,
        sealing: bool = False) -> list[tuple[float, Action]]:  # fmt: skip
    """Tick every 0.5 s for `seconds`; the actions taken and when."""
    acted = []
    for i in range(int(seconds / 0.5)):
        now = start + i * 0.5
        a = chain(now) if callable(chain) else chain
        action, why = policy.decide(a, sealing=sealing, now=now)
        if action is not Action.NOTHING:
            assert why
            acted.append((now, action))
    return acted


def test_a_lagging_node_whose_head_moves_is_left_alone() -> None:
    policy = StuckRecovery(PERIOD)
    moving = lambda now: stuck_for(2.0, now)  # noqa: E731 - lagging, yet catching up
    assert run(policy, 60, moving) == []


def test_a_stuck_node_is_re_handshaken_then_its_geth_restarted_with_backoff() -> None:
    policy = StuckRecovery(PERIOD, restart_backoff=(30.0, 60.0))
    acted = run(policy, 200, lambda now: stuck_for(now + 6.0, now))
    assert acted[:2] == [(0.0, Action.REHANDSHAKE), (6.0, Action.RESTART)]
    restarts = [t for t, a in acted if a is Action.RESTART]
    assert restarts == [6.0, 36.0, 96.0, 156.0]  # 30 s, then 60 s between restarts
    between = [t for t, a in acted if a is Action.REHANDSHAKE and 6.0 < t < 36.0]
    assert between == [12.0, 18.0, 24.0, 30.0]  # peers again while a restart must wait


def test_the_restart_steps_start_anew_once_the_node_kept_up_for_long() -> None:
    policy = StuckRecovery(PERIOD, restart_backoff=(30.0, 60.0))
    run(policy, 20, lambda now: stuck_for(now + 6.0, now))
    assert policy.restarts == 1
    run(policy, 100, level, start=20.0)
    assert policy.restarts == 1  # not yet: a node may be stuck again soon after
    run(policy, 400, level, start=120.0)
    assert policy.restarts == 0
    again = run(policy, 10, lambda now: stuck_for(6.0, now), start=600.0)
    assert again == [(600.0, Action.REHANDSHAKE), (606.0, Action.RESTART)]


def test_a_sealing_node_on_a_stalled_chain_re_handshakes_once_per_stall_period() -> None:
    policy = StuckRecovery(PERIOD)
    acted = run(policy, 35, stalled, sealing=True)
    assert acted == [(0.0, Action.REHANDSHAKE), (10.0, Action.REHANDSHAKE),
                     (20.0, Action.REHANDSHAKE), (30.0, Action.REHANDSHAKE)]  # fmt: skip
    assert run(StuckRecovery(PERIOD), 35, stalled, sealing=False) == []  # nothing to heal
