"""Benchmark: what a bank's balancer costs and what it saves.

Runs the default consortium (two banks, six nodes, balancers with peering) on free
ports and measures, for bank-a:

* read latency, one request at a time: `eth_getBlockByNumber("latest")` straight to a
  node and through the balancer (HAProxy, the filter, HAProxy's pool), p50 and p99;
* requests per second through the balancer and straight to one node, `--clients`
  threads each sending `eth_blockNumber` on a kept-alive connection for `--seconds`;
* failed requests while one of bank-a's nodes is killed (`kill -9` of its agent and
  geth) under a steady write-and-read loop (a raw transaction and a head read, in turn),
  inside HAProxy's health interval (2 s) and after it.

    .venv/bin/python -m scripts.bench.balancer [--reads 2000] [--seconds 10] [--record]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import statistics
import threading
import time
from typing import Any

import requests
from eth_account import Account

from orchestrator.local import balancers
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.names import tx_key_name

from .common import (
    bench_parser,
    default_consortium,
    machine,
    pct,
    publish,
)

BEGIN, END = "<!-- bench_balancer:begin -->", "<!-- bench_balancer:end -->"
HEALTH_INTERVAL = 2.0
READ = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}
HEAD = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}


def latencies(url: str, headers: dict[str, str], n: int) -> list[float]:
    session, times = requests.Session(), []
    for _ in range(n):
        t0 = time.perf_counter()
        answer = session.post(url, json=READ, headers=headers, timeout=10)
        times.append(time.perf_counter() - t0)
        assert "result" in answer.json(), answer.text
    return times


def throughput(
    url: str, headers: dict[str, str], clients: int, seconds: float
) -> tuple[float, int]:
    """(requests per second, failures) with `clients` threads."""
    done, failed = [0] * clients, [0] * clients
    stop = threading.Event()

    def client(i: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                ok = "result" in session.post(url, json=HEAD, headers=headers, timeout=10).json()
            except (requests.RequestException, ValueError):
                ok = False
            done[i] += ok
            failed[i] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0), sum(failed)


def kill_under_load(local: LocalConsortium, url: str, headers: dict[str, str]) -> dict[str, Any]:
    consortium = local.load()
    key = local.vault("bank-a").get_secret(tx_key_name("bank-a"))
    assert key is not None
    account = Account.from_key(key.value)
    session = requests.Session()
    count = {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionCount",
             "params": [account.address, "pending"]}  # fmt: skip
    nonce = int(session.post(url, json=count, headers=headers, timeout=10).json()["result"], 16)
    failures: list[float] = []
    answered = [0]
    stop = threading.Event()

    def loop() -> None:
        i = 0
        while not stop.is_set():
            raw = account.sign_transaction({
                "to": "0x" + "44" * 20, "value": 1, "gas": 21000, "maxFeePerGas": 20 * 10**9,
                "maxPriorityFeePerGas": 10**9, "nonce": nonce + i, "type": 2,
                "chainId": consortium.settings.chain_id,
            }).raw_transaction.hex()  # fmt: skip
            i += 1
            send = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                    "params": ["0x" + raw.removeprefix("0x")]}  # fmt: skip
            for body in (send, HEAD):
                try:
                    ok = (
                        "result" in session.post(url, json=body, headers=headers, timeout=10).json()
                    )
                except (requests.RequestException, ValueError):
                    ok = False
                if ok:
                    answered[0] += 1
                else:
                    failures.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=loop)
    thread.start()
    time.sleep(3)
    victim = "bank-a-2"
    paths = local.layout.node(victim)
    killed = time.monotonic()
    os.kill(json.loads(paths.agent_status.read_text())["pid"], signal.SIGKILL)
    os.kill(json.loads(paths.status.read_text())["geth_pid"], signal.SIGKILL)
    time.sleep(10)
    stop.set()
    thread.join()
    return {
        "answered": answered[0],
        "inside": sum(1 for f in failures if f - killed <= HEALTH_INTERVAL),
        "after": sum(1 for f in failures if f - killed > HEALTH_INTERVAL),
        "before": sum(1 for f in failures if f < killed),
    }


def main() -> None:
    parser = bench_parser(__spec__.name, __doc__)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with default_consortium(48000) as local:
        consortium = local.load()
        node = consortium.node("bank-a-1").rpc_url
        lb = balancers.url_of(consortium, "bank-a")
        auth = {"Authorization": f"Bearer {balancers.token(local.layout, 'bank-a').value}"}
        direct = latencies(node, {}, args.reads)
        through = latencies(lb, auth, args.reads)
        rps_direct, _ = throughput(node, {}, args.clients, args.seconds)
        rps_lb, failed_lb = throughput(lb, auth, args.clients, args.seconds)
        kill = kill_under_load(local, lb, auth)

    def ms(xs: list[float]) -> str:
        return f"p50 {statistics.median(xs) * 1000:.2f} ms, p99 {pct(xs, 99) * 1000:.2f} ms"

    section = "\n".join([
        BEGIN,
        "## Balancer: latency, throughput, a node killed under load",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}: the default consortium "
        "(two banks, six nodes, a balancer per bank with peering through it) on free ports; "
        "bank-a's balancer and its first node. Command: `.venv/bin/python -m "
        f"scripts.bench.balancer --reads {args.reads} --seconds {args.seconds:g} "
        f"--clients {args.clients} --record`.",
        "",
        "| | figures |",
        "|---|---|",
        f"| read (`eth_getBlockByNumber` latest), straight to a node, {args.reads} in turn "
        f"| {ms(direct)} |",
        f"| the same through the balancer (HAProxy, filter, HAProxy's pool) | {ms(through)} |",
        f"| `eth_blockNumber`, {args.clients} clients, {args.seconds:g} s: straight to one "
        f"node | {rps_direct:.0f} requests/s |",
        f"| the same through the balancer (spread over 3 nodes) | {rps_lb:.0f} requests/s, "
        f"{failed_lb} failed |",
        f"| write-and-read loop while bank-a-2 is killed: requests answered / failed "
        f"within the 2 s health interval / failed after it | {kill['answered']} / "
        f"{kill['inside']} / {kill['after']} |",
        "",
        "Everything shares this machine's two cores with six geths and their agents: the "
        "balancer's own cost is its two extra loopback hops and the filter's parse and "
        "re-write in Python, one process per bank.",
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
