"""The monitor's HTTP face: the page (`/`), the JSON API (`/api/state`), Prometheus
(`/metrics`) and its own health (`/healthz`), served from a background thread.

The page is one static file: it fetches `/api/state` every two seconds and redraws, so
it stays live without reloading. Every answer is computed from the latest snapshot,
which the monitor refreshes at most once a second however many browsers ask.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import TracebackType

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from orchestrator.errors import ConfigError
from orchestrator.monitor.metrics import exposition
from orchestrator.monitor.view import Snapshot

PAGE = resources.files("orchestrator.monitor").joinpath("page.html").read_bytes()


class MonitorServer:
    def __init__(self, host: str, port: int, latest: Callable[[], Snapshot]) -> None:
        self.host, self.port, self.latest = host, port, latest
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> MonitorServer:
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler(self.latest))
        except OSError as e:
            raise ConfigError(
                f"the monitor cannot listen on {self.host}:{self.port}: {e.strerror}",
                obj=f"{self.host}:{self.port}",
                hint="stop what listens there, or change the monitor's port",
            ) from e
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        ).start()
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


def _handler(latest: Callable[[], Snapshot]) -> type[BaseHTTPRequestHandler]:
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

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, PAGE, "text/html; charset=utf-8")
            elif path == "/api/state":
                body = json.dumps(latest().as_dict()).encode()
                self._send(200, body, "application/json")
            elif path == "/metrics":
                self._send(200, exposition(latest), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

    return Handler
