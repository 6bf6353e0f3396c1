"""A request in flight to a node that went dark is answered by another node.

Debian's HAProxy with poactl's generated configuration, in front of two "nodes": one
answers JSON-RPC at once, the other accepts the connection and never answers (a node
that froze or whose network stopped, still in rotation: its health check has not failed
yet). Requests go straight to the node pool (what the filter sends). Every one of them
is answered, the unlucky ones after `node_timeout`, well inside the client's timeout.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.balancer.haproxy import BalancerSpec, PoolNode, haproxy_config
from orchestrator.balancer.service import HAPROXY_STOP, haproxy_binary
from orchestrator.geth.proc import stop_pid
from tests.helpers.ports import free_port_bases
from tests.helpers.waiting import wait_for

NODE_TIMEOUT = 0.5
CLIENT_TIMEOUT = 5.0


class Answering(http.server.BaseHTTPRequestHandler):
    """A node that answers (and whose /health says so)."""

    def do_GET(self) -> None:
        self._send(b"")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": "0x2a"}).encode())

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[int]:
    """HAProxy's node pool over one answering node and one dark one; its port."""
    good = serve(Answering)
    dark = socket.socket()  # accepts (the kernel does), never answers
    dark.bind(("127.0.0.1", 0))
    dark.listen(64)
    health = serve(Answering)  # the dark node's agent has not noticed anything yet
    port, filter_port, pool_port, peer = free_port_bases(4, 1)
    spec = BalancerSpec(
        member="bank-a", host="127.0.0.1", port=port, filter_port=filter_port,
        pool_port=pool_port,
        nodes=[
            PoolNode("dark", "127.0.0.1", dark.getsockname()[1], health.server_address[1],
                     peer, None),
            PoolNode("good", "127.0.0.1", good.server_address[1], good.server_address[1],
                     peer, None),
        ],
        tokens_map=Path("tokens.map"), master_socket=tmp_path / "haproxy.sock",
        max_body_bytes=1 << 20, node_timeout=NODE_TIMEOUT,
    )  # fmt: skip
    (tmp_path / "tokens.map").write_text("")
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(spec))
    log = (tmp_path / "haproxy.log").open("wb")  # read on failure
    process = subprocess.Popen(
        [haproxy_binary(), "-W", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: _listening(pool_port), 15, "HAProxy to listen")
        yield pool_port
    finally:
        stop_pid(process.pid, HAPROXY_STOP)
        log.close()
        good.shutdown()
        health.shutdown()
        dark.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_requests_to_a_node_that_went_dark_are_answered_by_another(pool: int) -> None:
    session = requests.Session()
    slowest = 0.0
    for i in range(6):  # round robin: half of them reach the dark node first
        started = time.monotonic()
        answer = session.post(
            f"http://127.0.0.1:{pool}/",
            json={"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": []},
            timeout=CLIENT_TIMEOUT,
        )
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status_code == 200 and answer.json()["result"] == "0x2a"
    assert slowest < NODE_TIMEOUT + 2.0
