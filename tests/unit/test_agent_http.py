"""The agent's HTTP face: /health from the check callback, /metrics, 404, a busy port."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.agent.endpoint import AgentMetrics, HealthServer
from orchestrator.errors import ConfigError
from tests.helpers.waiting import wait_for

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, str, bytes]:
    """(status, content type, body); error statuses are answers too."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers["Content-Type"], e.read()


class Check:
    """A health check whose answer the test sets."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.healthy = True
        self.body: dict[str, Any] = {"node": "bank-a-1", "state": "SEALING", "block": 42}
        self.calls = 0

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        self.calls += 1
        return self.healthy, dict(self.body)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, Check, AgentMetrics]]:
    """One server for the module: each server takes half a second to shut down."""
    port, check, metrics = free_port(), Check(), AgentMetrics()
    with HealthServer(HOST, port, check, metrics):
        yield port, check, metrics


@pytest.fixture
def server(served: tuple[int, Check, AgentMetrics]) -> int:
    return served[0]


@pytest.fixture
def check(served: tuple[int, Check, AgentMetrics]) -> Check:
    served[1].reset()
    return served[1]


@pytest.fixture
def metrics(served: tuple[int, Check, AgentMetrics]) -> AgentMetrics:
    return served[2]


def test_health_is_200_with_the_checks_body_when_healthy(server: int, check: Check) -> None:
    status, content_type, body = get(server, "/health")
    assert status == 200
    assert content_type == "application/json"
    assert json.loads(body) == {"node": "bank-a-1", "state": "SEALING", "block": 42}
    assert check.calls == 1  # asked on every request, not cached


def test_health_is_503_with_the_body_when_unhealthy(server: int, check: Check) -> None:
    check.healthy = False
    check.body = {"node": "bank-a-1", "state": "FENCED", "block": None}
    status, content_type, body = get(server, "/health")
    assert status == 503
    assert content_type == "application/json"
    assert json.loads(body) == {"node": "bank-a-1", "state": "FENCED", "block": None}
    check.healthy = True
    assert get(server, "/health")[0] == 200  # and back again
    assert check.calls == 2


def test_metrics_expose_poactl_metrics(server: int, metrics: AgentMetrics) -> None:
    metrics.chain(1234, 3)
    metrics.leader(True)
    metrics.state("SEALING")
    metrics.renewal(ok=True)
    metrics.renewal(ok=True)
    metrics.renewal(ok=False)
    metrics.fenced()
    metrics.store_error()
    status, content_type, body = get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    lines = set(body.decode().splitlines())
    for expected in [
        "poactl_block_height 1234.0",
        "poactl_peers 3.0",
        "poactl_leader 1.0",
        'poactl_agent_state{state="SEALING"} 1.0',
        'poactl_lease_renewals_total{result="ok"} 2.0',
        'poactl_lease_renewals_total{result="lost"} 1.0',
        "poactl_fences_total 1.0",
        "poactl_store_errors_total 1.0",
    ]:
        assert expected in lines, f"{expected!r} not in /metrics"
    names = {
        line.split()[2] for line in lines if line.startswith("# TYPE ")
    }  # only our own registry: no python_/process_ collectors
    assert names and all(n.startswith("poactl_") for n in names)


def test_the_state_metric_shows_only_the_current_state() -> None:
    metrics = AgentMetrics()
    metrics.state("FOLLOWING")
    metrics.state("SEALING")
    text = metrics.exposition().decode()
    assert 'poactl_agent_state{state="SEALING"} 1.0' in text
    assert 'state="FOLLOWING"' not in text


@pytest.mark.parametrize("path", ["/", "/healthz", "/health/", "/metrics/x"])
def test_unknown_paths_are_404(server: int, path: str, check: Check) -> None:
    status, _, body = get(server, path)
    assert status == 404
    assert b"/health" in body
    assert check.calls == 0


def test_without_metrics_only_health_is_served() -> None:
    port, check = free_port(), Check()
    with HealthServer(HOST, port, check):
        assert get(port, "/metrics")[0] == 404
        assert get(port, "/health")[0] == 200


def test_a_port_in_use_is_a_config_error_naming_ports_health() -> None:
    check = Check()
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            HealthServer(HOST, port, check)
    assert caught.value.obj == "ports.health"
    assert f"{HOST}:{port}" in str(caught.value)
    assert "Address already in use" in str(caught.value)
    assert "agent.yaml" in str(caught.value)


def test_the_port_is_free_again_after_the_server_ends() -> None:
    port, check = free_port(), Check()
    with HealthServer(HOST, port, check):
        assert get(port, "/health")[0] == 200
    with pytest.raises(OSError):
        get(port, "/health")
    with HealthServer(HOST, port, check):  # a restarted agent binds the same port
        assert get(port, "/health")[0] == 200


def test_a_client_that_hangs_up_before_its_answer_is_one_debug_line_not_a_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """HAProxy's httpchk closes the connection once it has what it needs; here the client
    resets the connection while the check is still being answered."""
    port, answering, hung_up = free_port(), threading.Event(), threading.Event()
    big = {"problems": ["x" * 100] * 20_000}  # larger than the socket buffers

    def slow_check() -> tuple[bool, dict[str, Any]]:
        answering.set()
        assert hung_up.wait(5)
        return True, big

    with (
        caplog.at_level(logging.DEBUG, logger="orchestrator.agent.endpoint"),
        HealthServer(HOST, port, slow_check),
    ):
        client = socket.create_connection((HOST, port))
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answering.wait(5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset, not a polite close
        hung_up.set()
        wait_for(lambda: any("hung up" in r.getMessage() for r in caplog.records), 5,
                 "the hang-up to be noted")  # fmt: skip
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
