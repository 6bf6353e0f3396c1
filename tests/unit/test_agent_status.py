"""The agent's `agent.json` from several threads: a snapshot taken before a fence never
lands after the fence's (`Agent.write_status` snapshots and writes under the agent's
lock). The agent is a real one on the embedded backends, not started: only its status
writes are exercised, and the one write that races is held back at the file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.agent import status
from orchestrator.agent.machine import Agent
from orchestrator.agent.settings import AgentFile, AgentPorts
from orchestrator.agent.status import AgentState, AgentStatus
from orchestrator.config import StoreSettings, VaultSettings, parse_config
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
