"""A unix socket that answers JSON-RPC the way geth's IPC does (one JSON object per
request, answered on the same connection), so a client runs its real transport."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def fake_geth_ipc(
    path: Path,
    answers: Mapping[str, dict[str, Any]],
    calls: list[tuple[str, list[Any]]] | None = None,
) -> Iterator[Path]:
    """Serve `answers` (method -> {"result": ...} or {"error": ...}) at `path`; each
    request's (method, params) is appended to `calls` when given. The answers may be
    changed while it serves (the dict the test keeps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                request = json.loads(conn.recv(65536))
                if calls is not None:
                    calls.append((request["method"], request.get("params") or []))
                answer = {"jsonrpc": "2.0", "id": request["id"], **answers[request["method"]]}
                conn.sendall(json.dumps(answer).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        server.close()
        path.unlink()
