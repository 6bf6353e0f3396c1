"""Benchmark: what a bank's monitor costs, and how fast its page first loads.

Runs the default consortium (two banks, four signers, six agents, period 2 s) on free
ports with its two monitors, then measures bank-a's monitor process:

* CPU over `--seconds` at idle, and over as long again under a steady load of plain
  transfers (`--tx-rate` per second, signed ahead with each bank's transaction key and
  sent in JSON-RPC batches to each bank's first node), as a share of one core and of
  the machine;
* the page's first load in Debian's Chromium (Playwright), from navigation until the
  nodes table shows data, over `--loads` fresh pages; the last one is saved as the
  screenshot in docs/monitoring.md.

    .venv/bin/python -m scripts.bench.monitor [--seconds 60] [--tx-rate 100] [--record]
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time

import psutil
import requests
from eth_account import Account

from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.names import tx_key_name
from orchestrator.statefile import read_json

from .common import (
    ROOT,
    bench_parser,
    default_consortium,
    machine,
    publish,
)

BEGIN, END = "<!-- bench_monitor:begin -->", "<!-- bench_monitor:end -->"
SCREENSHOT = ROOT / "docs" / "monitoring-dashboard.png"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def cpu_share(pid: int, seconds: float) -> float:
    """CPU seconds the process used per wall second (1.0 = one core)."""
    process = psutil.Process(pid)
    before, t0 = process.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, t1 = process.cpu_times(), time.monotonic()
    used = (after.user - before.user) + (after.system - before.system)
    return used / (t1 - t0)


def transfers(local: LocalConsortium, count: int) -> dict[str, list[str]]:
    """Per bank node URL: `count` signed transfers from that bank's transaction account."""
    consortium = local.load()
    out: dict[str, list[str]] = {}
    for member in consortium.members():
        key = local.vault(member).get_secret(tx_key_name(member))
        assert key is not None
        account = Account.from_key(key.value)
        node = next(n for n in consortium.nodes if n.member == member)
        out[node.rpc_url] = [
            "0x" + account.sign_transaction({
                "to": "0x" + "22" * 20, "value": 1, "gas": 21000, "maxFeePerGas": 50 * 10**9,
                "maxPriorityFeePerGas": 10**9, "nonce": i, "type": 2,
                "chainId": consortium.settings.chain_id,
            }).raw_transaction.hex().removeprefix("0x")
            for i in range(count)
        ]  # fmt: skip
    return out


def send(signed: dict[str, list[str]], rate: float, stop: threading.Event) -> int:
    """Send at `rate` per second in total until `stop`; how many were sent."""
    sent, t0 = 0, time.monotonic()
    queues = {url: iter(txs) for url, txs in signed.items()}
    session = requests.Session()
    while not stop.is_set():
        due = int((time.monotonic() - t0) * rate) - sent
        for url, txs in queues.items():
            batch = [
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [tx]}
                for i, tx in zip(range(max(0, due // len(queues))), txs, strict=False)
            ]
            if batch:
                session.post(url, json=batch, timeout=10)
                sent += len(batch)
        time.sleep(0.05)
    return sent


def page_loads(url: str, loads: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for i in range(loads):
                page = chromium.new_page(viewport={"width": 1100, "height": 1500})
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_selector("#nodes tbody tr")
                times.append(time.perf_counter() - t0)
                if i == loads - 1:
                    page.wait_for_timeout(2500)  # one more refresh, with the chart filled
                    page.screenshot(path=str(SCREENSHOT), full_page=True)
                page.close()
        finally:
            chromium.close()
    return times


def main() -> None:
    parser = bench_parser(__spec__.name, __doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tx-rate", type=float, default=100.0)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    with default_consortium(47000) as local:
        record_ = read_json(local.layout.root / "monitors" / "bank-a" / "monitor.json") or {}
        pid, url = int(record_["pid"]), str(record_["url"])
        time.sleep(10)  # the monitor's first backfill is not what idle costs
        idle = cpu_share(pid, args.seconds)
        signed = transfers(local, int(args.tx_rate * args.seconds))
        stop = threading.Event()
        outcome: list[int] = []
        sender = threading.Thread(target=lambda: outcome.append(send(signed, args.tx_rate, stop)))
        sender.start()
        loaded = cpu_share(pid, args.seconds)
        stop.set()
        sender.join()
        api = requests.get(url + "api/state", timeout=5).json()
        busiest = max(p["txs"] for p in api["tx_per_minute"])
        loads = page_loads(url, args.loads)
    cores = psutil.cpu_count() or 1
    section = "\n".join([
        BEGIN,
        "## Monitor: CPU and the page's first load",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}: the default consortium (two "
        "banks, six agents, four signers, period 2 s) on free ports; bank-a's monitor process. "
        "Command: `.venv/bin/python -m scripts.bench.monitor "
        f"--seconds {args.seconds:g} --tx-rate {args.tx_rate:g} --loads {args.loads} --record`.",
        "",
        "| | monitor CPU, one core | share of the machine |",
        "|---|---|---|",
        f"| idle, {args.seconds:g} s | {idle * 100:.2f} % | {idle * 100 / cores:.2f} % |",
        f"| {args.tx_rate:g} transfers/s sent ({outcome[0] if outcome else 0} in "
        f"{args.seconds:g} s; busiest minute on the page: {busiest} tx) | {loaded * 100:.2f} % | "
        f"{loaded * 100 / cores:.2f} % |",
        "",
        f"First load of the page in Chromium, navigation until the nodes table shows data, "
        f"{len(loads)} fresh pages: median {statistics.median(loads) * 1000:.0f} ms, "
        f"max {max(loads) * 1000:.0f} ms.",
        "Goal: the monitor adds at most 5 % CPU (of the machine) at idle and under load, and "
        "the page loads in under a second: "
        + ("**met**." if max(idle, loaded) / cores <= 0.05 and max(loads) < 1 else "**NOT met**."),
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
