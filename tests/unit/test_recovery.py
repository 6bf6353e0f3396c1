"""What the agent does about a node stuck behind its peers or a stalled chain
(`agent.recovery.StuckRecovery`): observations and time in, an action out."""

from __future__ import annotations

import tempfile
from pathlib import Path

from orchestrator.agent.chainview import ChainView
from orchestrator.agent.forks import equal_weight_fork
from orchestrator.agent.recovery import Action, NodeCare, StuckRecovery
from orchestrator.agent.sealing import Sealer
from orchestrator.geth.keys import follower_address
from orchestrator.geth.lag import Assessment, Head, assess
from orchestrator.network.heartbeats import write_heartbeat
from orchestrator.signer.policy import SigningPolicy
from orchestrator.store.local import LocalStore
from tests.helpers.fake_ipc import fake_geth_ipc

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


def test_a_stuck_node_has_its_geth_restarted_with_backoff() -> None:
    policy = StuckRecovery(PERIOD, restart_backoff=(30.0, 60.0))
    acted = run(policy, 200, lambda now: stuck_for(now + 15.0, now))
    assert acted == [(0.0, Action.RESTART), (30.0, Action.RESTART), (90.0, Action.RESTART),
                     (150.0, Action.RESTART)]  # fmt: skip


def test_the_restart_steps_start_anew_once_the_node_kept_up_for_long() -> None:
    policy = StuckRecovery(PERIOD, restart_backoff=(30.0, 60.0))
    run(policy, 20, lambda now: stuck_for(now + 15.0, now))
    assert policy.restarts == 1
    run(policy, 100, level, start=20.0)
    assert policy.restarts == 1  # not yet: a node may be stuck again soon after
    run(policy, 400, level, start=120.0)
    assert policy.restarts == 0
    again = run(policy, 10, lambda now: stuck_for(15.0, now), start=600.0)
    assert again == [(600.0, Action.RESTART)]


def test_a_sealing_node_on_a_stalled_chain_re_handshakes_twice_then_stops_flapping() -> None:
    policy = StuckRecovery(PERIOD)
    acted = run(policy, 60, stalled, sealing=True)
    assert acted == [(0.0, Action.REHANDSHAKE), (10.0, Action.REHANDSHAKE)]
    assert run(StuckRecovery(PERIOD), 35, stalled, sealing=False) == []  # nothing to heal
    run(policy, 5, level, start=60.0)  # the chain moved: the next stall may heal again
    assert run(policy, 5, stalled, start=65.0, sealing=True) == [(65.0, Action.REHANDSHAKE)]


def test_a_node_on_the_losing_side_of_an_equal_weight_fork_steps_off_it() -> None:
    def head(number: int, hash_: str, now: float) -> Head:
        return Head(number, now, now - 30, hash_, hash_, td=20)

    policy = StuckRecovery(PERIOD)
    acted = []
    for i in range(120):
        now = i * 0.5
        own, rival = head(10, "0x0b", now), head(9, "0x0a", now)
        chain = assess(own, [rival], now=now, period=PERIOD)
        fork = equal_weight_fork(own, [rival])
        assert fork is not None and fork.winner.hash == "0x0a"  # the lower number wins
        action, _ = policy.decide(chain, sealing=True, now=now, fork=fork)
        if action is not Action.NOTHING:
            acted.append((now, action))
    assert acted[0] == (0.0, Action.REWIND)
    assert [t for t, a in acted if a is Action.REWIND] == [0.0, 20.0, 40.0]


def test_eip_3436_order_heaviest_then_lowest_number_then_lowest_hash() -> None:
    def h(number: int, hash_: str, td: int) -> Head:
        return Head(number, 0.0, None, hash_, hash_, td)

    own = h(10, "0x0c", 20)
    assert equal_weight_fork(own, [h(11, "0x01", 21)]) is None  # heavier: geth syncs it
    assert equal_weight_fork(own, [h(9, "0x01", 19), h(10, "0x0c", 20)]) is None  # no rival
    fork = equal_weight_fork(own, [h(10, "0x0a", 20), h(10, "0x0f", 20)])
    assert fork is not None and fork.winner.hash == "0x0a" and fork.own_loses
    fork = equal_weight_fork(own, [h(11, "0x01", 20)])
    assert fork is not None and fork.winner is own and not fork.own_loses
    assert equal_weight_fork(Head(10, 0.0, None, "x", "0x0c", None), [h(10, "0x0a", 20)]) is None


# -- the node's care, against a geth that stands still ------------------------------------


def test_the_care_asks_for_a_restart_of_a_stuck_geth(tmp_path: Path) -> None:
    """geth answers block 246 and "not syncing" while the others' heartbeats say 290."""
    now = [1_800_000_000.0]
    store = LocalStore(tmp_path / "s.sqlite")
    write_heartbeat(store, {
        "member": "bank-b", "node": "bank-b-1", "state": "SEALING", "leader": False,
        "signer": None, "sealing": True, "block": 290, "hash": "0x1", "block_time": int(now[0]),
        "peers": 3, "time": "t1",
    })  # fmt: skip
    chain = ChainView(("bank-a", "bank-a-1"), period=PERIOD, heartbeat_seconds=10)
    policy = SigningPolicy(follower=follower_address("bank-a-1"), block_period=PERIOD)
    with tempfile.TemporaryDirectory(prefix="rc-", dir="/tmp") as root:
        ipc = Path(root) / "geth.ipc"
        sealer = Sealer(ipc, policy, needs_peers=lambda: True)
        peers = ["enode://" + "ab" * 64 + "@127.0.0.1:30303"]
        care = NodeCare(ipc, sealer, chain, peers=lambda: peers, period=PERIOD,
                        clock=lambda: now[0])  # fmt: skip
        head = {"number": hex(246), "hash": "0x2", "timestamp": hex(int(now[0]) - 90)}
        answers = {
            "eth_getBlockByNumber": {"result": head}, "eth_syncing": {"result": False},
            "admin_removePeer": {"result": True}, "admin_addPeer": {"result": True},
        }  # fmt: skip
        calls: list[tuple[str, list[object]]] = []
        with fake_geth_ipc(ipc, answers, calls):
            chain.refresh(store, now[0])
            care.reset()
            wanted = []
            for _ in range(50):  # 25 s of ticks, heartbeats read every 10 s
                care.tick()
                wanted.append(care.restart_wanted())
                now[0] += 0.5
                if len(wanted) % 20 == 0:
                    chain.refresh(store, now[0])
    assert [c for c in calls if c[0].startswith("admin_")] == []  # no peer flapping
    assert care.last is not None and care.last.stuck
    restarts = [(i, w) for i, w in enumerate(wanted) if w]
    assert len(restarts) == 1  # once: the next waits for the backoff
    assert restarts[0][0] == 30  # after 15 s standing still
    assert restarts[0][1].startswith("44 blocks behind the head (at 246, the chain at 290)")
    assert restarts[0][1].endswith("and geth does not catch up by itself")
