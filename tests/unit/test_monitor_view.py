"""What the monitor shows, from a real history file: heartbeat statuses, the chain's
figures, transactions per minute, missed turns, forks and alerts; and that the history
survives a restart and stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.monitor.history import Block, Heartbeat, History, Reorg
from orchestrator.monitor.metrics import exposition
from orchestrator.monitor.view import Settings, in_turn_signer, node_status, snapshot

NOW = 1_800_000_000.0  # a whole minute: 30,000,000 minutes
A1, A2, B1 = ("0x" + c * 40 for c in "abc")
SETTINGS = Settings(
    member="bank-a",
    heartbeat_seconds=10,
    block_period=2,
    signers={"bank-a": [A1, A2], "bank-b": [B1]},
)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "history.sqlite")


def beat(node: str, age: float, *, block: int = 10, hash_: str = "0xh10") -> Heartbeat:
    return Heartbeat(
        node, NOW - age, node.rsplit("-", 1)[0], "SEALING", block, hash_, 3, True, None
    )


def chain(n: int, *, step: int = 2, txs: int = 1, end: float = NOW) -> list[Block]:
    """Blocks 1..n, the last stamped `end`, each sealed in turn."""
    signers = [A1, A2, B1]
    return [
        Block(i, f"0xh{i}", f"0xh{i - 1}", int(end) - (n - i) * step, txs,
              in_turn_signer(i, signers), True)
        for i in range(1, n + 1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("age", "status"),
    [(0, "reporting"), (20, "reporting"), (21, "late"), (50, "late"), (51, "silent")],
)
def test_a_heartbeat_is_reporting_then_late_then_silent(age: float, status: str) -> None:
    assert node_status(age, 10) == status


def test_nodes_show_their_last_heartbeat_and_lag(history: History) -> None:
    history.add_heartbeats([beat("bank-a-1", 40, block=6), beat("bank-a-1", 5, block=7)])
    history.add_heartbeats([beat("bank-b-1", 100, block=7)])
    history.add_blocks(chain(12))
    s = snapshot(history, SETTINGS, NOW)
    nodes = {n["name"]: n for n in s.nodes}
    assert nodes["bank-a-1"]["status"] == "reporting"
    assert nodes["bank-a-1"]["lag"] == 2  # block 9 was the head 5 s ago (block 12 now)
    assert nodes["bank-b-1"]["status"] == "silent"
    assert nodes["bank-b-1"]["reported_last_30_min"]
    assert [a.name for a in s.alerts] == ["NodeSilent"]


def test_a_node_silent_for_longer_than_30_minutes_no_longer_raises_an_alert(
    history: History,
) -> None:
    history.add_heartbeats([beat("bank-b-1", 31 * 60)])
    history.add_blocks(chain(3))
    s = snapshot(history, SETTINGS, NOW)
    assert s.nodes[0]["status"] == "silent"
    assert not s.nodes[0]["reported_last_30_min"]
    assert not s.alerts


def test_chain_figures_and_transactions_per_minute(history: History) -> None:
    history.add_blocks(chain(90, txs=3))  # 3 minutes of blocks every 2 s
    s = snapshot(history, SETTINGS, NOW + 1)
    assert s.chain["head"] == 90
    assert s.chain["block_time_seconds"] == 2.0
    assert s.chain["head_age_seconds"] == pytest.approx(1.0)
    assert not s.chain["stalled"]
    series = s.tx_per_minute
    assert len(series) == 61 and series[-1]["minute"] == NOW
    assert sum(p["txs"] for p in series) == 90 * 3
    by_minute = {p["minute"]: p["txs"] for p in series}
    assert by_minute[NOW - 60] == 30 * 3  # 30 blocks stamped in that minute


def test_a_chain_without_a_new_block_is_stalled(history: History) -> None:
    history.add_blocks(chain(5, end=NOW - 11))
    s = snapshot(history, SETTINGS, NOW)
    assert s.chain["stalled"]
    assert [a.name for a in s.alerts] == ["ChainStalled"]


def test_a_validator_that_misses_its_turns_is_named(history: History) -> None:
    blocks = chain(30)
    signers = [A1, A2, B1]
    # Every block where B1 was in turn was sealed out of turn by A1 instead.
    blocks = [
        b if in_turn_signer(b.number, signers) != B1
        else Block(b.number, b.hash, b.parent, b.time, b.txs, A1, False)
        for b in blocks
    ]  # fmt: skip
    history.add_blocks(blocks)
    s = snapshot(history, SETTINGS, NOW)
    by_address = {v["address"]: v for v in s.validators}
    assert by_address[B1]["missed_turns_last_hour"] == 10
    assert by_address[A1]["missed_turns_last_hour"] == 0
    assert by_address[A1]["last_sealed_block"] == max(b.number for b in blocks if b.signer == A1)
    assert any(a.name == "ValidatorMissingTurns" and a.subject == B1 for a in s.alerts)


def test_nodes_that_disagree_at_one_height_are_a_fork(history: History) -> None:
    history.add_heartbeats([
        beat("bank-a-1", 1, block=10, hash_="0xaaa"),
        beat("bank-b-1", 1, block=10, hash_="0xbbb"),
        beat("bank-b-2", 1, block=9, hash_="0x999"),
    ])  # fmt: skip
    history.add_blocks(chain(10))
    s = snapshot(history, SETTINGS, NOW)
    (split,) = s.forks["split_heights"]
    assert split == {"height": 10, "hashes": {"0xaaa": ["bank-a-1"], "0xbbb": ["bank-b-1"]}}
    assert [a.name for a in s.alerts] == ["Fork"]


def test_a_deep_reorg_is_remembered_and_raises_an_alert(history: History) -> None:
    history.add_blocks(chain(10))
    history.replace_from(8, Reorg(NOW - 5, 8, 3, "0xh8", "0xother8"))
    assert history.head() is not None and history.head().number == 7  # type: ignore[union-attr]
    s = snapshot(history, SETTINGS, NOW)
    assert s.forks["deepest_reorg_last_hour"] == 3
    assert any(a.name == "Fork" and "replaced 3 blocks" in a.message for a in s.alerts)


def test_the_history_survives_a_restart_and_is_pruned(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    first = History(path)
    first.add_heartbeats([beat("bank-a-1", 3 * 3600), beat("bank-a-1", 5)])
    first.add_blocks(chain(5))
    first.close()
    again = History(path)
    assert again.head() is not None and again.head().number == 5  # type: ignore[union-attr]
    assert len(again.heartbeats_since(0)) == 2
    again.prune(NOW)
    assert len(again.heartbeats_since(0)) == 1  # the one older than two hours is gone


def test_metrics_carry_the_snapshot(history: History) -> None:
    history.add_heartbeats([beat("bank-b-1", 100)])
    history.add_blocks(chain(5))
    s = snapshot(history, SETTINGS, NOW)
    text = exposition(lambda: s).decode()
    assert "poactl_monitor_chain_head 5.0" in text
    assert 'poactl_monitor_node_status{member="bank-b",node="bank-b-1",status="silent"} 1.0' in text
    assert 'poactl_monitor_alert{alert="NodeSilent"} 1.0' in text
    assert 'poactl_monitor_alert{alert="Fork"} 0.0' in text


def test_a_stuck_node_of_the_bank_is_a_lagging_node_not_a_stalled_chain(
    history: History,
) -> None:
    """The monitor follows bank-a-1, frozen then stuck at block 246 (stamped 90 s ago),
    while the other nodes' fresh heartbeats show the chain at 290."""
    history.add_blocks(chain(246, end=NOW - 90))
    history.add_heartbeats([
        Heartbeat("bank-a-1", NOW - 2, "bank-a", "FOLLOWING", 246, "0xh246", 5, False, None,
                  block_time=int(NOW - 90)),
        Heartbeat("bank-a-2", NOW - 3, "bank-a", "SEALING", 289, "0xh289", 5, True, A2,
                  block_time=int(NOW - 4)),
        Heartbeat("bank-b-1", NOW - 1, "bank-b", "SEALING", 290, "0xh290", 5, True, B1,
                  block_time=int(NOW - 2)),
    ])  # fmt: skip
    s = snapshot(history, SETTINGS, NOW)
    assert not s.chain["stalled"]
    assert (s.chain["head"], s.chain["head_hash"], s.chain["followed_head"]) == (290, "0xh290", 246)
    assert s.chain["head_age_seconds"] == pytest.approx(2.0)
    nodes = {n["name"]: n for n in s.nodes}
    assert nodes["bank-a-1"]["lag"] == 43  # 44 blocks, net of the second between beats
    assert nodes["bank-a-2"]["lag"] == 0 and nodes["bank-b-1"]["lag"] == 0
    assert [(a.name, a.subject) for a in s.alerts] == [("NodeBehind", "bank-a-1")]


def test_two_banks_nodes_with_one_name_are_two_nodes(history: History) -> None:
    history.add_heartbeats([
        Heartbeat("node-1", NOW - 1, "bank-a", "SEALING", 10, "0xh10", 3, True, None),
        Heartbeat("node-1", NOW - 1, "bank-b", "SEALING", 10, "0xh10", 3, True, None),
    ])  # fmt: skip
    history.add_blocks(chain(10))
    s = snapshot(history, SETTINGS, NOW)
    assert [(n["member"], n["name"]) for n in s.nodes] == [
        ("bank-a", "node-1"),
        ("bank-b", "node-1"),
    ]
    assert set(s.forks["heads"]) == {"bank-a/node-1", "bank-b/node-1"}


def test_the_quiet_between_heartbeats_is_not_a_stall_while_the_monitors_node_is_frozen(
    history: History,
) -> None:
    """The monitor's node froze at block 10 (it last answered 20 s ago); the others'
    heartbeats, every 10 s, show the chain moving: no stall, even 18 s after the last."""
    history.add_blocks(chain(10, end=NOW - 20))
    history.add_heartbeats([
        Heartbeat("bank-b-1", NOW - 8, "bank-b", "SEALING", 15, "0xh15", 5, True, B1,
                  block_time=int(NOW - 9)),
    ])  # fmt: skip
    for later in (0, 10):
        s = snapshot(history, SETTINGS, NOW + later, followed_at=NOW - 20)
        assert s.chain["head"] == 15 and not s.chain["stalled"], s.chain
        assert s.chain["head_age_seconds"] == pytest.approx(9 + later)
        assert "ChainStalled" not in [a.name for a in s.alerts]
    # A heartbeat that shows the same head long after its block was made: a stall.
    history.add_heartbeats([
        Heartbeat("bank-b-1", NOW + 12, "bank-b", "SEALING", 15, "0xh15", 5, True, B1,
                  sent="later", block_time=int(NOW - 9)),
    ])  # fmt: skip
    s = snapshot(history, SETTINGS, NOW + 12, followed_at=NOW - 20)
    assert s.chain["stalled"] and [a.name for a in s.alerts] == ["ChainStalled"]


def test_a_node_whose_agent_gave_up_shows_fatal_and_why(history: History) -> None:
    history.add_blocks(chain(10))
    history.add_heartbeats([
        Heartbeat("bank-a-1", NOW - 3, "bank-a", "FATAL", None, None, None, False, None,
                  message="geth kept failing: it stopped 6 times in a row (last exit code 1)"),
    ])  # fmt: skip
    s = snapshot(history, SETTINGS, NOW)
    (node,) = s.nodes
    assert node["state"] == "FATAL" and node["message"].startswith("geth kept failing")
    (alert,) = s.alerts
    assert alert.name == "NodeFatal" and alert.subject == "bank-a-1"
    assert "its agent gave up: geth kept failing" in alert.message
