"""Heartbeats are keyed by the (member, node) of their path, a document that disagrees
with its path is refused, and readers stamp each one with their own time of observation:
a dead node's last heartbeat stamped in the future goes silent like any other."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import StoreSettings, parse_config
from orchestrator.monitor.service import Monitor
from orchestrator.monitor.settings import MonitorFile
from orchestrator.monitor.view import snapshot
from orchestrator.network.heartbeats import Observer, read_heartbeats, write_heartbeat
from orchestrator.store.local import LocalStore
from tests.helpers.ports import consortium_yaml


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "s.sqlite")


def body(
    member: str, node: str, *, block: int = 7, sent: str = "2026-01-01T00:00:00+00:00"
) -> dict[str, Any]:
    return {
        "member": member, "node": node, "state": "SEALING", "leader": False, "signer": None,
        "sealing": True, "block": block, "hash": "0xh", "block_time": 1, "peers": 2,
        "time": sent,
    }  # fmt: skip


def test_two_banks_node_1_are_two_heartbeats(store: LocalStore) -> None:
    write_heartbeat(store, body("bank-a", "node-1", block=5))
    write_heartbeat(store, body("bank-b", "node-1", block=9))
    beats, problems = read_heartbeats(store)
    assert problems == []
    assert {(b.member, b.node): b.block for b in beats} == {
        ("bank-a", "node-1"): 5,
        ("bank-b", "node-1"): 9,
    }


def test_a_heartbeat_that_disagrees_with_its_path_is_refused(store: LocalStore) -> None:
    store.write("heartbeats/bank-b/node-2.json", json.dumps(body("bank-b", "node-1")).encode())
    store.write("heartbeats/bank-b/node-3.json", json.dumps(body("bank-a", "node-3")).encode())
    store.write("heartbeats/bank-b/node-4.json", b"{not json")
    store.write("heartbeats/node-5.json", json.dumps(body("bank-b", "node-5")).encode())
    beats, problems = read_heartbeats(store)
    assert beats == []
    assert sorted(problems) == [
        "heartbeats/bank-b/node-2.json: names 'bank-b'/'node-1', not its path's bank-b/node-2",
        "heartbeats/bank-b/node-3.json: names 'bank-a'/'node-3', not its path's bank-b/node-3",
        "heartbeats/bank-b/node-4.json: not a heartbeat (JSONDecodeError: Expecting property "
        "name enclosed in double quotes: line 1 column 2 (char 1))",
        "heartbeats/node-5.json: not a heartbeat's name (heartbeats/<member>/<node>.json)",
    ]


def test_the_observer_keeps_the_first_sighting_until_a_new_heartbeat(store: LocalStore) -> None:
    observer = Observer()
    write_heartbeat(store, body("bank-a", "node-1", sent="2099-01-01T00:00:00+00:00"))
    beats, _ = read_heartbeats(store)
    assert [b.seen_at for b in observer.observe(beats, 100.0)] == [100.0]
    assert [b.seen_at for b in observer.observe(beats, 160.0)] == [100.0]  # the same one
    write_heartbeat(store, body("bank-a", "node-1", sent="2099-01-01T00:00:10+00:00"))
    beats, _ = read_heartbeats(store)
    assert [b.seen_at for b in observer.observe(beats, 170.0)] == [170.0]


def test_the_monitor_stamps_heartbeats_with_its_own_clock(
    store: LocalStore, tmp_path: Path
) -> None:
    """A dead node whose last heartbeat its clock stamped an hour ahead goes silent."""
    consortium = parse_config(consortium_yaml({"bank-a": 1}), source="test")
    settings = MonitorFile(
        member="bank-a", port=65000, rpc_url="http://127.0.0.1:9", state_dir=tmp_path / "m",
        consortium_file=tmp_path / "c.yaml", store=StoreSettings(kind="local", path=tmp_path),
    )  # fmt: skip
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    write_heartbeat(store, body("bank-a", "bank-a-1", sent=future))
    monitor = Monitor(settings, store=store, consortium=consortium)
    now = datetime.now(UTC).timestamp()
    (beat,) = monitor.take_heartbeats(now)
    assert beat.at == now and beat.sent == future
    monitor.take_heartbeats(now + 120)  # nothing new from it since
    later = snapshot(monitor.history, monitor._view, now + 120)
    (node,) = later.nodes
    assert node["status"] == "silent" and node["age_seconds"] == pytest.approx(120)
    monitor.history.close()

    again = Monitor(settings, store=store, consortium=consortium)  # restarted
    (beat,) = again.take_heartbeats(now + 130)
    assert beat.at == now  # the first sighting survives the restart
    again.history.close()
