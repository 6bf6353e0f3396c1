"""A bank's balancer reloaded again and again under steady traffic answers every request.

`poactl balancer` (Debian's HAProxy and poactl's filter) in front of one real geth; the
node's agent is replaced by a plain `/health` that answers 200, because what is under
test is the reload, not rotation. A reload makes HAProxy's old workers close their idle
keep-alive connections; the filter keeps connections to its pool open, so a request
written onto one as it closes must be sent again, not answered "no node answered".
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from genesis import CliqueSpec
from orchestrator.balancer.tokens import create_token, read_token
from tests.helpers.geth import DevNode, sealing_chain
from tests.helpers.ports import free_port_bases
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.geth

RELOADS = 20
CLIENTS = 6


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def node(geth: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    root = tmp_path_factory.mktemp("reload-chain")
    with sealing_chain(geth, root, CliqueSpec(chain_id=4242, signers=["0x" + "00" * 20])) as n:
        yield n


def test_reloads_under_traffic_drop_no_request(node: DevNode, tmp_path: Path) -> None:
    health = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    base = free_port_bases(1, 3)[0]
    port, filter_port, pool_port = base, base + 1, base + 2
    config = tmp_path / "balancer.yaml"
    config.write_text(yaml.safe_dump({
        "member": "bank-a", "port": port, "filter_port": filter_port, "pool_port": pool_port,
        "state_dir": str(tmp_path / "state"), "tokens_dir": str(tmp_path / "tokens"),
        "nodes": [{"name": "bank-a-1", "http_port": node.http_port,
                   "health_port": health.server_address[1], "p2p_port": 30303}],
    }))  # fmt: skip
    token = read_token(create_token(tmp_path / "tokens", "app"))
    log = (tmp_path / "balancer.log").open("wb")
    argv = [str(Path(sys.executable).parent / "poactl"), "balancer", "--config", str(config)]
    balancer = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    answered = [0]
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as s:  # keep-alive, like an application's client
            s.headers["Authorization"] = f"Bearer {token}"
            while not stop.is_set():
                try:
                    reply = s.post(url, json=body, timeout=10)
                    if reply.status_code != 200 or "result" not in reply.json():
                        failures.append(reply.text[:200])
                    else:
                        answered[0] += 1
                except requests.RequestException as e:
                    failures.append(repr(e)[:200])
                time.sleep(0.002)

    try:
        wait_for(lambda: _answers(url, token, body), 20, "the balancer to answer")
        clients = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        for _ in range(RELOADS):
            time.sleep(0.25)
            balancer.send_signal(signal.SIGHUP)  # rewrite the files, reload HAProxy
        time.sleep(1)
        stop.set()
        for c in clients:
            c.join(15)
        text = (tmp_path / "balancer.log").read_text()
        assert text.count("reloaded HAProxy") == RELOADS, text[-2000:]
        assert not failures, failures[:5]
        assert answered[0] > 100
        print(f"answered {answered[0]} requests across {RELOADS} reloads")
    finally:
        balancer.send_signal(signal.SIGTERM)
        balancer.wait(15)
        log.close()
        health.shutdown()


def _answers(url: str, token: str, body: dict[str, object]) -> bool:
    try:
        reply = requests.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=2
        )
    except requests.RequestException:
        return False
    return reply.status_code == 200 and "result" in reply.json()
