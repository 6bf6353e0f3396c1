"""The agent's `agent.json` from several threads: a snapshot taken before a fence never
lands after the fence's (`Agent.write_status` snapshots and writes under the agent's
lock). The agent is a real one on the embedded backends, not started: only its status
writes are exercised, and the one write that races is held back at the file."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.agent import status
from orchestrator.agent.machine import Agent
from orchestrator.agent.settings import AgentFile, AgentPorts
from orchestrator.agent.status import AgentState, AgentStatus
from orchestrator.config import StoreSettings, VaultSettings, parse_config
from orchestrator.errors import StateError
from orchestrator.logs import last_failure
from orchestrator.network.heartbeats import read_heartbeats
from orchestrator.runtime.process import ProcessRuntime
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault
from tests.helpers.ports import consortium_yaml


def make_agent(tmp_path: Path) -> Agent:
    consortium = parse_config(consortium_yaml({"bank-a": 1}), source="test")
    node = consortium.nodes[0]
    settings = AgentFile(
        member="bank-a", node=node.name, state_dir=tmp_path / "node",
        consortium_file=tmp_path / "consortium.yaml",
        ports=AgentPorts(p2p=node.p2p_port, http=node.http_port, authrpc=node.authrpc_port,
                         health=node.health_port),
        store=StoreSettings(kind="local", path=tmp_path / "store.sqlite"),
        vault=VaultSettings(kind="local", path=tmp_path / "vault"),
    )  # fmt: skip
    return Agent(
        settings, store=LocalStore(tmp_path / "store.sqlite"), vault=LocalVault(tmp_path / "vault"),
        runtime=ProcessRuntime(), geth="geth", consortium=consortium,
    )  # fmt: skip


def test_a_status_snapshot_taken_before_a_fence_never_lands_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_agent(tmp_path)
    agent.state = AgentState.SEALING
    snapshot_taken, fenced = threading.Event(), threading.Event()
    write = status.write

    def held_back(path: Path, record: AgentStatus) -> None:  # type: ignore[override]
        """The heartbeat's status write, slow at the disk, with its SEALING snapshot."""
        if record.state is AgentState.SEALING and not snapshot_taken.is_set():
            snapshot_taken.set()
            fenced.wait(1.0)  # the fence comes meanwhile (or waits for this write)
        write(path, record)

    monkeypatch.setattr(status, "write", held_back)
    writer = threading.Thread(target=agent.write_status)
    writer.start()
    assert snapshot_taken.wait(5)

    def fence() -> None:
        agent._transition(AgentState.FENCED, "lost the lease leases/bank-a/identity-0")
        fenced.set()

    fencer = threading.Thread(target=fence)
    fencer.start()
    fencer.join(5)
    writer.join(5)
    final = status.read(agent.paths.agent_status, AgentStatus)
    assert final is not None and final.state is AgentState.FENCED
    assert final.message == "lost the lease leases/bank-a/identity-0"


def test_an_agent_that_gives_up_writes_a_last_heartbeat_saying_so(tmp_path: Path) -> None:
    """The monitor then shows the node FATAL with why, not SEALING from before."""
    agent = make_agent(tmp_path)
    agent.supervisor = SimpleNamespace()  # type: ignore[assignment]  # geth ran, and ended
    agent._fatal = StateError(
        "geth kept failing: it stopped 6 times in a row (last exit code 0); geth said: "
        "ERROR[12-07|15:01:02.123] Low disk space. Gracefully shutting down Geth",
        obj="bank-a-1",
    )
    agent._shut_down()
    beats, problems = read_heartbeats(agent.store)
    assert problems == []
    (beat,) = beats
    assert (beat.member, beat.node, beat.state, beat.block) == ("bank-a", "bank-a-1", "FATAL", None)
    assert beat.message is not None and "Low disk space" in beat.message


def test_the_fatal_message_names_what_geth_said(tmp_path: Path) -> None:
    log = tmp_path / "geth.log"
    log.write_text(
        "INFO [12-07|15:01:00.000] Starting Geth\n"
        "ERROR[12-07|15:01:02.123] Low disk space. Gracefully shutting down Geth to prevent "
        "database corruption. available=178.89MiB path=/data\n"
        "INFO [12-07|15:01:02.200] Got interrupt, shutting down...\n"
    )
    assert last_failure(log) == (
        "ERROR[12-07|15:01:02.123] Low disk space. Gracefully shutting down Geth to prevent "
        "database corruption. available=178.89MiB path=/data"
    )
    log.write_text(
        "Fatal: Error starting protocol stack: listen tcp :30303: bind: address in use\n"
    )
    assert last_failure(log) is not None and last_failure(log).startswith("Fatal: Error starting")  # type: ignore[union-attr]
    log.write_text("INFO [12-07|15:01:00.000] all good\n")
    assert last_failure(log) is None
