"""The read index's HTTP face, served from background threads:

    GET  /v1/logs?subject=0x…[&furnisher=0x…][&min_block=N]   a subject's logs (see
         `orchestrator.credit.indexed`, the SDK's side of it)
    GET  /v1/status     how far the index is, and any problem
    GET  /metrics       Prometheus (`poactl_index_*`)
    GET  /healthz       the process answers
    POST /v1/rebuild    forget the index and fill it again from the chain (loopback only)

With a tokens directory, `/v1/logs` needs `Authorization: Bearer <token>` of one of the
bank's application tokens (the balancer's, `balancer.tokens`); the status, like the
metrics, holds no record and stays open to the bank's monitoring.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from orchestrator.balancer.tokens import read_token
from orchestrator.credit.indexed import LOGS_PATH, REBUILD_PATH, STATUS_PATH
from orchestrator.errors import ConfigError


class Served(Protocol):
    """What the server asks of the index (`service.ReadIndex`)."""

    def logs_answer(
        self, subject: bytes, furnisher: bytes | None, min_block: int | None
    ) -> tuple[int, dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def metrics(self) -> bytes: ...

    def request_rebuild(self) -> None: ...


class Tokens:
    """The application tokens in a directory, read again when an unknown one comes."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        if self.directory is None:
            return True
        if header is None or not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ").strip()
        with self._lock:
            if token not in self._known:
                files = sorted(self.directory.glob("*.token")) if self.directory.is_dir() else []
                self._known = {read_token(p) for p in files}
            return bool(token) and token in self._known


class IndexServer:
    def __init__(self, host: str, port: int, index: Served, *, tokens_dir: Path | None) -> None:
        self.host, self.port, self.index = host, port, index
        self.tokens = Tokens(tokens_dir)
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> IndexServer:
        try:
            self._server = ThreadingHTTPServer(
                (self.host, self.port), _handler(self.index, self.tokens.allows)
            )
        except OSError as e:
            raise ConfigError(
                f"the read index cannot listen on {self.host}:{self.port}: {e.strerror}",
                obj=f"{self.host}:{self.port}",
                hint="stop what listens there, or change the index's port",
            ) from e
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="index-http", daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _hex_arg(query: dict[str, list[str]], name: str, size: int) -> bytes | None:
    values = query.get(name)
    if not values:
        return None
    text = values[0]
    if not text.startswith("0x") or len(text) != 2 + 2 * size:
        raise ValueError(f"{name} must be 0x and {2 * size} hex digits")
    return bytes.fromhex(text[2:])


def _handler(index: Served, allows: Callable[[str | None], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == LOGS_PATH and not allows(self.headers.get("Authorization")):
                self._json(401, {"error": "an application token is required"})
            elif url.path == LOGS_PATH:
                query = parse_qs(url.query)
                try:
                    subject = _hex_arg(query, "subject", 32)
                    if subject is None:
                        raise ValueError("subject is required")
                    furnisher = _hex_arg(query, "furnisher", 20)
                    min_block = int(query["min_block"][0]) if "min_block" in query else None
                except ValueError as e:
                    self._json(400, {"error": str(e)})
                    return
                self._json(*index.logs_answer(subject, furnisher, min_block))
            elif url.path == STATUS_PATH:
                self._json(200, index.status())
            elif url.path == "/metrics":
                self._send(200, index.metrics(), CONTENT_TYPE_LATEST)
            elif url.path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 65536))
            if urlsplit(self.path).path != REBUILD_PATH:
                self._send(404, b"not found\n", "text/plain")
            elif not ipaddress.ip_address(self.client_address[0]).is_loopback:
                self._json(403, {"error": "a rebuild is asked from the index's own machine"})
            else:
                index.request_rebuild()
                self._json(202, {"rebuilding": True})

    return Handler
