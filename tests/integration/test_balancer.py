"""Each bank's load balancer on a running consortium: Debian's HAProxy and poactl's
JSON-RPC filter in front of the bank's nodes, with real geth behind them.

One consortium for the module: bank-a with two identities and a spare (three nodes
behind its balancer), bank-b with one; `balancer: {}` (nodes peer through the
balancers). Tests run in file order; the later ones kill a node and reload HAProxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from click.testing import CliRunner
from eth_account import Account

from orchestrator.cli.main import main
from orchestrator.local import balancers
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.registry import deploy_local
from orchestrator.network.names import tx_key_name
from orchestrator.network.peers import read_enodes
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import ports_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

HEALTH_INTERVAL = 2.0  # HAProxy checks every second and needs two failures


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    text = (
        f"{ports_yaml(4)}\n"
        "members:\n"
        "  bank-a: {validators: 2, spares: 1}\n"
        "  bank-b: {validators: 1, spares: 0}\n"
        "balancer: {}\n"
    )
    with running_consortium(geth, text) as local:
        yield local


def url(local: LocalConsortium, member: str = "bank-a") -> str:
    return balancers.url_of(local.load(), member)


def token(local: LocalConsortium, member: str = "bank-a") -> str:
    return balancers.token(local.layout, member).value


def post(
    local: LocalConsortium, body: str | bytes, *, auth: str | None = "token"
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = f"Bearer {token(local) if auth == 'token' else auth}"
    return requests.post(url(local), data=body, headers=headers, timeout=10)


def rpc(method: str, *params: Any, rid: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}


REFUSED = [
    rpc("eth_sign", "0x" + "11" * 20, "0xdeadbeef"),
    rpc("eth_signTransaction", {"from": "0x" + "11" * 20}),
    rpc("eth_sendTransaction", {"from": "0x" + "11" * 20}),
    rpc("eth_accounts"),
    rpc("personal_listAccounts"),
    rpc("admin_peers"),
    rpc("admin_addPeer", "enode://x"),
    rpc("debug_traceBlockByNumber", "0x1"),
    rpc("miner_stop"),
    rpc("txpool_content"),
    rpc("clique_propose", "0x" + "11" * 20, True),
]


def test_status_shows_each_banks_balancer_its_token_and_its_nodes_in_rotation(
    running: LocalConsortium,
) -> None:
    result = CliRunner().invoke(
        main, ["status", "--state-dir", str(running.layout.root), "--format", "json"]
    )
    rows = {b["member"]: b for b in json.loads(result.output)["balancers"]}
    assert rows["bank-a"]["url"] == url(running)
    assert Path(rows["bank-a"]["token_file"]).read_text().strip() == token(running)
    wait_for(
        lambda: (
            balancers.rows(running.layout, running.load())[0].in_rotation
            == ["bank-a-1", "bank-a-2", "bank-a-3"]
        ),
        20,
        "bank-a's three nodes in rotation",
    )


def test_an_unknown_caller_gets_401(running: LocalConsortium) -> None:
    body = json.dumps(rpc("eth_blockNumber"))
    assert post(running, body, auth=None).status_code == 401
    assert post(running, body, auth="not-a-token").status_code == 401
    assert post(running, body, auth=token(running, "bank-b")).status_code == 401  # another bank's
    answer = post(running, body)
    assert answer.status_code == 200 and int(answer.json()["result"], 16) > 0


@pytest.mark.parametrize("request_", REFUSED, ids=lambda r: r["method"])
def test_each_refused_method_is_refused_alone_and_in_a_batch(
    running: LocalConsortium, request_: dict[str, Any]
) -> None:
    single = post(running, json.dumps(request_)).json()
    assert single["error"]["code"] == -32601, single
    batch = post(running, json.dumps([rpc("eth_chainId", rid=7), {**request_, "id": 8}])).json()
    by_id = {a["id"]: a for a in batch}
    assert "result" in by_id[7] and by_id[8]["error"]["code"] == -32601


@pytest.mark.parametrize(
    "body",
    [
        '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","Method":"eth_sign","params":[]}',
        '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","method":"admin_peers","params":[]}',
        '{"jsonrpc":"2.0","id":1,"m\\u0065thod":"personal_listAccounts","params":[]}',
        '{"jsonrpc":"2.0","id":1,"method":"eth_\\u0073endTransaction","params":[{}]}',
        '{"jsonrpc":"2.0","id":1,"METHOD":"eth_accounts","params":[]}',
    ],
)
def test_keys_and_values_are_read_the_way_geth_reads_them(
    running: LocalConsortium, body: str
) -> None:
    answer = post(running, body).json()
    assert answer["error"]["code"] == -32601, answer


def test_a_body_larger_than_haproxys_buffer_is_still_read_whole(running: LocalConsortium) -> None:
    """100 KB, six times HAProxy's 16 KB buffer; the refused method key at the very end."""
    padding = "0x" + "00" * 50_000
    body = (
        '{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"data":"' + padding + '"},'
        '"latest"],"Method":"eth_sendTransaction"}'
    )
    assert len(body) > 100_000
    answer = post(running, body).json()
    assert answer["error"]["code"] == -32601 and "eth_sendTransaction" in answer["error"]["message"]


def test_a_body_over_the_limit_gets_413(running: LocalConsortium) -> None:
    body = '{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["' + "0" * (1 << 20) + '"]}'
    assert post(running, body).status_code == 413


def test_websocket_subscribes_to_heads_and_refuses_the_rest(running: LocalConsortium) -> None:
    async def session() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token(running)}"}
        ws_url = url(running).replace("http", "ws")
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url, headers=headers) as ws:
            sent = [
                rpc("eth_subscribe", "newHeads", rid=1),
                {**REFUSED[0], "id": 2},
                rpc("eth_subscribe", "newPendingTransactions", rid=3),
                {"jsonrpc": "2.0", "id": 4, "method": "eth_chainId", "Method": "admin_peers"},
                [rpc("eth_chainId", rid=5), rpc("eth_sign", rid=6)],
            ]
            for message in sent:
                await ws.send_str(json.dumps(message))
            got: list[dict[str, Any]] = []
            while not any(m.get("method") == "eth_subscription" for m in got) or len(got) < 7:
                answer = json.loads((await asyncio.wait_for(ws.receive(), 15)).data)
                got += answer if isinstance(answer, list) else [answer]
            return got

    got = asyncio.run(session())
    by_id = {m["id"]: m for m in got if "id" in m}
    assert by_id[1]["result"].startswith("0x")
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    assert by_id[4]["error"]["code"] == -32601  # the last "method" key, as geth reads it
    assert by_id[6]["error"]["code"] == -32601 and "error" in by_id[5]  # batch not sent
    heads = [m for m in got if m.get("method") == "eth_subscription"]
    assert heads and "parentHash" in heads[0]["params"]["result"]

    async def stranger() -> int:
        async with aiohttp.ClientSession() as s:
            try:
                async with s.ws_connect(url(running).replace("http", "ws")):
                    return 101
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    assert asyncio.run(stranger()) == 401


def test_nodes_peer_through_the_balancers(running: LocalConsortium) -> None:
    consortium = running.load()
    enodes, _ = read_enodes(running.store())
    for node in consortium.nodes:
        enode = enodes[node.member, node.name]
        assert enode.endswith(f"@127.0.0.1:{node.peer_port}"), enode


def test_credit_records_go_through_the_banks_balancers(running: LocalConsortium) -> None:
    deploy_local(running)
    result = CliRunner().invoke(main, ["demo", "--state-dir", str(running.layout.root)])
    assert result.exit_code == 0, result.output
    assert "bank-a's balancer" in result.output and "bank-b's balancer" in result.output


def _transfers(local: LocalConsortium, count: int) -> list[str]:
    consortium = local.load()
    key = local.vault("bank-a").get_secret(tx_key_name("bank-a"))
    assert key is not None
    account = Account.from_key(key.value)
    nonce = _settled_nonce(local, account.address)
    return [
        "0x" + account.sign_transaction({
            "to": "0x" + "33" * 20, "value": 1, "gas": 21000, "maxFeePerGas": 20 * 10**9,
            "maxPriorityFeePerGas": 10**9, "nonce": nonce + i, "type": 2,
            "chainId": consortium.settings.chain_id,
        }).raw_transaction.hex().removeprefix("0x")
        for i in range(count)
    ]  # fmt: skip


def _settled_nonce(local: LocalConsortium, address: str) -> int:
    """The account's next nonce once every one of bank-a's nodes has mined all it sent
    before (an earlier test's transfers may still be pending on some node, and asking a
    node that lags would hand out a nonce in use: "already known")."""
    urls = [n.rpc_url for n in local.load().nodes if n.member == "bank-a"]
    counts: set[int] = set()

    def settled() -> bool:
        counts.clear()
        for url in urls:
            for tag in ("latest", "pending"):
                body = rpc("eth_getTransactionCount", address, tag)
                counts.add(int(requests.post(url, json=body, timeout=5).json()["result"], 16))
        return len(counts) == 1

    wait_for(settled, 60, "bank-a's earlier transfers to be mined on all its nodes")
    return counts.pop()


class Loop(threading.Thread):
    """Writes (a raw transaction) and reads (its receipt, the head) through the
    balancer, as fast as answers come; every failure is kept with its time."""

    def __init__(self, local: LocalConsortium, raw: list[str]) -> None:
        super().__init__(daemon=True)
        self.local, self.raw = local, raw
        self.stop = threading.Event()
        self.failures: list[tuple[float, str]] = []
        self.ok = 0

    def run(self) -> None:
        for tx in self.raw:
            if self.stop.is_set():
                return
            for body in (rpc("eth_sendRawTransaction", tx), rpc("eth_blockNumber")):
                try:
                    answer = post(self.local, json.dumps(body))
                    if answer.status_code != 200 or "error" in answer.json():
                        self.failures.append((time.monotonic(), answer.text[:200]))
                    else:
                        self.ok += 1
                except requests.RequestException as e:
                    self.failures.append((time.monotonic(), repr(e)[:200]))
            time.sleep(0.02)


def test_a_killed_node_leaves_rotation_without_failed_requests(running: LocalConsortium) -> None:
    victim = "bank-a-3"
    paths = running.layout.node(victim)
    loop = Loop(running, _transfers(running, 600))
    loop.start()
    time.sleep(2)
    killed = time.monotonic()
    os.kill(json.loads(paths.agent_status.read_text())["pid"], signal.SIGKILL)
    os.kill(json.loads(paths.status.read_text())["geth_pid"], signal.SIGKILL)
    wait_for(
        lambda: victim in balancers.rows(running.layout, running.load())[0].out_of_rotation,
        10,
        "the killed node to leave rotation",
    )
    time.sleep(5)
    loop.stop.set()
    loop.join(30)
    inside = [f for f in loop.failures if f[0] - killed <= HEALTH_INTERVAL]
    after = [f for f in loop.failures if f[0] - killed > HEALTH_INTERVAL]
    assert not after, after  # HAProxy retries a refused connection on another node
    assert loop.ok > 50
    print(f"failed inside the health interval: {len(inside)}; answered: {loop.ok}")
    running.up(timeout=120)  # the node comes back and catches up
    wait_for(
        lambda: victim in balancers.rows(running.layout, running.load())[0].in_rotation,
        60,
        "the restarted node back in rotation",
    )


def test_a_reload_drops_no_request(running: LocalConsortium) -> None:
    loop = Loop(running, _transfers(running, 300))
    loop.start()
    time.sleep(1)
    pid = json.loads((balancers.service(running.layout, "bank-a").record).read_text())["pid"]
    for _ in range(3):
        os.kill(pid, signal.SIGHUP)  # the balancer rewrites its files and reloads HAProxy
        time.sleep(1)
    loop.stop.set()
    loop.join(30)
    assert not loop.failures, loop.failures
    assert loop.ok > 30
    log = (balancers.service(running.layout, "bank-a").log).read_text()
    assert log.count("reloaded HAProxy") >= 3
