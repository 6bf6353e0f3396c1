"""The agent's typed status records: what is written reads back the same, the JSON shape
stays what `poactl status --format json` users and older tooling saw, and a record this
poactl does not understand is refused with a message that names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.agent import status
from orchestrator.agent.status import (
    AgentState,
    AgentStatus,
    FenceRecord,
    GethState,
    GethStatus,
    IdentityStatus,
)
from orchestrator.errors import StateError


def _agent() -> AgentStatus:
    return AgentStatus(
        node="bank-a-1",
        member="bank-a",
        role="validator",
        state=AgentState.SEALING,
        since="2026-11-30T12:00:00+00:00",
        pid=4242,
        leader=True,
        identity=IdentityStatus(
            index=0, signer="0x" + "ab" * 20, lease_renewed_at=100.0, fence_at=108.5,
            lease_expires_by=115.0,
        ),
        last_fence=FenceRecord(at=90.0, lease="leases/bank-a/identity-0", lease_expires_by=95.0),
        sealing=True,
        fences=1,
        rpc_url="http://127.0.0.1:8545",
        health_url="http://127.0.0.1:8745/health",
        message="holds identity 0",
    )  # fmt: skip


def test_an_agent_record_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    status.write(path, _agent())
    assert status.read(path, AgentStatus) == _agent()


def test_the_agent_record_keeps_its_json_shape(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    status.write(path, _agent())
    doc = json.loads(path.read_text())
    assert set(doc) == {
        "version", "node", "member", "role", "state", "since", "pid", "leader", "identity",
        "last_fence", "sealing", "fences", "rpc_url", "health_url", "message", "clique",
    }  # fmt: skip
    assert doc["version"] == 1
    assert doc["state"] == "SEALING"
    assert set(doc["identity"]) == {
        "index", "signer", "lease_renewed_at", "fence_at", "lease_expires_by",
    }  # fmt: skip


def test_an_agent_record_without_votes_still_reads(tmp_path: Path) -> None:
    """Records written before votes were reconciled have no `clique` key."""
    path = tmp_path / "agent.json"
    status.write(path, _agent())
    doc = json.loads(path.read_text())
    del doc["clique"]
    path.write_text(json.dumps(doc))
    record = status.read(path, AgentStatus)
    assert record is not None and record.clique is None


def test_a_geth_record_round_trips(tmp_path: Path) -> None:
    record = GethStatus(
        node="bank-a-1", state=GethState.BACKOFF, since="2026-11-30T12:00:00+00:00",
        supervisor_pid=1, geth_pid=None, restarts=2, sealing=False, last_exit_code=3,
        message="restart 2/5 in 1.0s",
    )  # fmt: skip
    path = tmp_path / "status.json"
    status.write(path, record)
    assert status.read(path, GethStatus) == record


def test_no_record_yet_is_none(tmp_path: Path) -> None:
    assert status.read(tmp_path / "agent.json", AgentStatus) is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"state": "SLEEPING"}, "state"),  # a state no enum defines
        ({"version": 2}, "version"),  # a newer poactl wrote it
        ({"pid": "4242"}, "pid"),
    ],
)
def test_a_record_it_does_not_understand_is_refused(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    path = tmp_path / "agent.json"
    doc = _agent().model_dump(mode="json") | change
    path.write_text(json.dumps(doc))
    with pytest.raises(StateError) as e:
        status.read(path, AgentStatus)
    assert e.value.obj == str(path)
    assert named in e.value.what
    assert "poactl down" in (e.value.hint or "")


def test_a_broken_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text('{"node": "bank-a-1", ')
    with pytest.raises(StateError, match="not a AgentStatus record"):
        status.read(path, AgentStatus)
