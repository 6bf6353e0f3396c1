"""The agent's /health judges its node's head against the other nodes' heartbeats (the
one assessment of `orchestrator.geth.lag`): a node stuck behind fails even while geth's
own `eth_syncing` says false, as a frozen-then-resumed geth's does. geth is a fake IPC
socket; the store is the real embedded one."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agent.chainview import ChainView
from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.agent.paths import NodePaths
from orchestrator.agent.reporting import NodeReport
from orchestrator.network.heartbeats import write_heartbeat
from orchestrator.store.local import LocalStore
from tests.helpers.fake_ipc import fake_geth_ipc

ME = ("bank-a", "bank-a-1")


@pytest.fixture
def paths() -> Iterator[NodePaths]:
    with tempfile.TemporaryDirectory(prefix="hl-", dir="/tmp") as root:  # short socket path
        yield NodePaths(Path(root))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "s.sqlite")


def beat(member: str, node: str, block: int, now: float) -> dict[str, Any]:
    return {
        "member": member, "node": node, "state": "SEALING", "leader": False, "signer": None,
        "sealing": True, "block": block, "hash": f"0x{block:064x}", "block_time": int(now) - 1,
        "peers": 3, "time": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


@contextmanager
def geth_at(paths: NodePaths, block: int, *, syncing: Any = False) -> Iterator[None]:
    head = {"number": hex(block), "hash": f"0x{block:064x}", "timestamp": hex(int(time.time()))}
    answers = {
        "eth_getBlockByNumber": {"result": head},
        "eth_syncing": {"result": syncing},
        "net_peerCount": {"result": "0x5"},
    }
    with fake_geth_ipc(paths.ipc, answers):
        yield


def report(paths: NodePaths, store: LocalStore, chain: ChainView) -> NodeReport:
    facts = {"node": ME[1], "member": ME[0], "state": "SEALING", "leader": False,
             "signer": None, "sealing": True}  # fmt: skip
    return NodeReport(paths, store=store, metrics=AgentMetrics(), chain=chain, facts=lambda: facts)


def health(report: NodeReport) -> tuple[bool, dict[str, Any]]:
    return report.health(geth_state="RUNNING", needs_peers=True, ending=False)


def test_a_node_behind_the_others_heartbeats_fails_while_eth_syncing_says_false(
    paths: NodePaths, store: LocalStore
) -> None:
    now = time.time()
    write_heartbeat(store, beat("bank-a", "bank-a-2", 290, now))
    write_heartbeat(store, beat("bank-b", "bank-b-1", 289, now))
    write_heartbeat(store, beat(*ME, 246, now))  # its own: never a peer's head
    chain = ChainView(ME, period=2, heartbeat_seconds=10)
    chain.refresh(store, now)
    with geth_at(paths, 246, syncing=False):
        healthy, body = health(report(paths, store, chain))
    assert not healthy
    assert body["behind"] == 44 and body["chain_head"] == 290
    assert body["problems"] == ["44 blocks behind the head (at 246, the chain at 290)"]


def test_a_node_level_with_the_others_is_healthy(paths: NodePaths, store: LocalStore) -> None:
    now = time.time()
    write_heartbeat(store, beat("bank-a", "bank-a-2", 290, now))
    chain = ChainView(ME, period=2, heartbeat_seconds=10)
    chain.refresh(store, now)
    with geth_at(paths, 291):
        healthy, body = health(report(paths, store, chain))
    assert healthy, body
    assert body["behind"] == 0


def test_geth_s_own_sync_far_behind_fails_without_any_heartbeat(
    paths: NodePaths, store: LocalStore
) -> None:
    chain = ChainView(ME, period=2, heartbeat_seconds=10)
    syncing = {"currentBlock": hex(100), "highestBlock": hex(140), "startingBlock": "0x0"}
    with geth_at(paths, 100, syncing=syncing):
        healthy, body = health(report(paths, store, chain))
    assert not healthy
    assert body["problems"] == ["40 blocks behind the head (at 100, the chain at 140)"]


def test_a_stale_heartbeat_of_a_node_long_gone_does_not_count(
    paths: NodePaths, store: LocalStore
) -> None:
    now = time.time()
    write_heartbeat(store, beat("bank-b", "bank-b-9", 900, now))
    chain = ChainView(ME, period=2, heartbeat_seconds=10)
    chain.refresh(store, now - 60)  # first seen a minute ago, never since
    with geth_at(paths, 246):
        healthy, body = health(report(paths, store, chain))
    assert healthy, body
