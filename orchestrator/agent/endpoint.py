"""The agent's HTTP face: `/health` for the member's load balancer, `/metrics` for
Prometheus. Served on the agent's health port from a background thread.

HAProxy's health check hangs up as soon as it has the status line; a client gone before
its answer is written is one DEBUG line, not a traceback in the agent's log."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from orchestrator.errors import ConfigError

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
HUNG_UP = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, HUNG_UP):
            log.debug("health client %s hung up before its answer: %s", client_address, error)
            return
        log.exception("health endpoint: a request from %s failed", client_address)


class AgentMetrics:
    """The agent's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._block = Gauge("poactl_block_height", "Head block of this node", registry=r)
        self._peers = Gauge("poactl_peers", "Connected peers of this node", registry=r)
        self._leader = Gauge(
            "poactl_leader", "1 while this agent holds the leader lease", registry=r
        )
        self._state = Gauge(
            "poactl_agent_state", "1 for the agent's current state", ["state"], registry=r
        )
        self._renewals = Counter(
            "poactl_lease_renewals", "Identity lease renewals", ["result"], registry=r
        )
        self._fences = Counter("poactl_fences", "Times sealing was fenced", registry=r)
        self._store_errors = Counter(
            "poactl_store_errors", "Transient store or vault errors", registry=r
        )
        self._signing = Histogram(
            "poactl_signer_seconds",
            "Time the external signer took to answer geth, by result (signed, refused)",
            ["result"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
            registry=r,
        )

    def chain(self, block: int, peers: int) -> None:
        self._block.set(block)
        self._peers.set(peers)

    def leader(self, held: bool) -> None:
        self._leader.set(1 if held else 0)

    def state(self, name: str) -> None:
        self._state.clear()
        self._state.labels(state=name).set(1)

    def renewal(self, *, ok: bool) -> None:
        self._renewals.labels(result="ok" if ok else "lost").inc()

    def fenced(self) -> None:
        self._fences.inc()

    def store_error(self) -> None:
        self._store_errors.inc()

    def signer_answered(self, result: str, seconds: float) -> None:
        self._signing.labels(result=result).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """`with HealthServer(host, port, check, metrics): ...` serves until the block ends."""

    def __init__(
        self, host: str, port: int, check: HealthCheck, metrics: AgentMetrics | None = None
    ) -> None:
        handler = _handler(check, metrics)
        try:
            self._server = _Server((host, port), handler)
        except OSError as e:
            raise ConfigError(
                f"cannot serve /health on {host}:{port} ({e.strerror})",
                obj="ports.health",
                hint="another program uses the port; pick a free one in agent.yaml",
            ) from e
        self._thread = threading.Thread(target=self._server.serve_forever, name="health")

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(check: HealthCheck, metrics: AgentMetrics | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                healthy, body = check()
                self._send(200 if healthy else 503, "application/json", json.dumps(body).encode())
            elif self.path == "/metrics" and metrics is not None:
                self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
            else:
                self._send(404, "text/plain", b"not found: try /health or /metrics\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the balancer polls every second; keep the agent's log readable

    return Handler
