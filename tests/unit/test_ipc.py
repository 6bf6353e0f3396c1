"""The IPC client tells "geth answered null" from "geth could not be asked", over a
real unix socket that answers the way geth's IPC does."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import NodeUnreachable, RpcRefused
from orchestrator.geth.ipc import ipc_probe, ipc_request
from tests.helpers.fake_ipc import fake_geth_ipc

ANSWERS: dict[str, dict[str, Any]] = {
    "miner_stop": {"result": None},
    "eth_blockNumber": {"result": "0x2a"},
    "clique_propose": {"error": {"code": -32602, "message": "invalid argument 0"}},
}


@pytest.fixture
def fake_geth() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="ipc-", dir="/tmp"))
    with fake_geth_ipc(directory / "geth.ipc", ANSWERS) as path:
        yield path
    directory.rmdir()


def test_null_is_an_answer(fake_geth: Path) -> None:
    assert ipc_request(fake_geth, "miner_stop") is None


def test_a_value_is_returned(fake_geth: Path) -> None:
    assert ipc_request(fake_geth, "eth_blockNumber") == "0x2a"
    assert ipc_probe(fake_geth, "eth_blockNumber") == "0x2a"


def test_an_error_answer_is_refused_with_geths_message(fake_geth: Path) -> None:
    with pytest.raises(RpcRefused, match="geth refused clique_propose: invalid argument 0"):
        ipc_request(fake_geth, "clique_propose", ["0x" + "00" * 20, True])
    assert ipc_probe(fake_geth, "clique_propose") is None


def test_a_missing_socket_cannot_be_asked(tmp_path: Path) -> None:
    with pytest.raises(NodeUnreachable) as e:
        ipc_request(tmp_path / "geth.ipc", "miner_stop")
    assert e.value.obj == str(tmp_path / "geth.ipc")
    assert "geth is not running" in (e.value.hint or "")
    assert ipc_probe(tmp_path / "geth.ipc", "eth_blockNumber") is None


def test_a_socket_nobody_listens_on_cannot_be_asked() -> None:
    directory = Path(tempfile.mkdtemp(prefix="ipc-", dir="/tmp"))
    path = directory / "geth.ipc"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # bound, never listening: connections are refused
    try:
        with pytest.raises(NodeUnreachable, match="cannot call miner_stop"):
            ipc_request(path, "miner_stop", timeout=1.0)
    finally:
        dead.close()
        path.unlink()
        directory.rmdir()
