"""The read benchmark's procedure, command line and report (see the package docstring)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from orchestrator.index.admin import rebuild
from orchestrator.local import balancers, indexes

from .. import reads
from ..common import ROOT, geth_version, machine, pct, publish
from ..load.run import Run
from .fill import fill
from .probes import LagSampler, Reader, Reads

BEGIN, END = "<!-- bench_reads:begin -->", "<!-- bench_reads:end -->"
GAS_PER_RECORD = 30_000  # a new record in a batch of 100 (docs/credit.md: 29,922)
READER_START_S = 4.0  # the reader process's imports, before its window opens


@dataclass
class Size:
    target: int
    on_chain: int = 0  # records on chain when the reads started
    fill_rate: float = math.nan  # records/s while filling up to this size
    catch_up_s: float = math.nan  # the index reaching the node's head after the fill
    idle: Reads = field(default_factory=Reads)
    load: Reads = field(default_factory=Reads)
    load_rate: float = math.nan  # records/s the load step sent
    load_records: int = 0  # records the load step wrote
    load_kept_up: bool = False
    lags: list[int] = field(default_factory=list)
    rebuild_s: float = math.nan
    db_mb: float = math.nan
    index_rss_mb: float = math.nan


def ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1000:.1f} ms"


def wait_caught_up(index_url: str, node_url: str, timeout: float = 3600.0) -> float:
    """Seconds until the index holds the node's head (within a block)."""
    t0 = time.monotonic()
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    while time.monotonic() - t0 < timeout:
        try:
            head = int(requests.post(node_url, json=body, timeout=5).json()["result"], 16)
            held = requests.get(index_url + "v1/status", timeout=5).json().get("block") or {}
            if isinstance(held.get("number"), int) and head - held["number"] <= 1:
                return time.monotonic() - t0
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the index at {index_url} did not catch up in {timeout:.0f} s")


def measure(args: argparse.Namespace, sizes: list[Size], notes: dict[str, Any]) -> None:
    shipped = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
    work = Path(tempfile.mkdtemp(prefix="poa-bench-reads-", dir="/tmp"))
    gas_limit = int(shipped.get("gas_limit", 30_000_000))
    run = Run("default", "batch", k=args.batch_records, work=work, port_base=args.port_base)
    try:
        run.up()
        layout, consortium = run.local.layout, run.consortium
        bank = consortium.members()[-1]  # the reader, as in the load benchmark
        node_url = run.direct[bank].rpc_url
        index_url = indexes.service(layout, bank).url() or indexes.url_of(consortium, bank)
        token = balancers.token(layout, bank) if consortium.settings.balancer else None
        access = dataclasses.replace(run.direct[bank], index_url=index_url, rpc_token=token)
        period = consortium.settings.block_period
        saturation = (
            gas_limit / (GAS_PER_RECORD * period)
            if args.saturation == "gas"
            else float(args.saturation)
        )
        load_rate = round(saturation * args.load_share / 100, 1)
        notes.update(
            gas_limit=gas_limit,
            period=period,
            saturation=saturation,
            load_rate=load_rate,
            index_url=index_url,
        )
        print(
            f"[reads] {bank} reads at {node_url} and its index {index_url}; load "
            f"{load_rate} records/s ({args.load_share} % of {saturation:.0f})",
            flush=True,
        )
        probe = Probe(run, access, node_url, index_url, load_rate, bank)
        on_chain = 2 * 5  # the read subject's ten tradelines (Run._seed_reads)
        wait_caught_up(index_url, node_url)
        for i, size in enumerate(sizes):
            if size.target > on_chain:
                filled = fill(run.lanes, size.target - on_chain, window=args.window, tag=f"S{i}")
                on_chain += filled.records
                size.fill_rate = filled.rate
                print(
                    f"[reads] filled {filled.records} records in {filled.seconds:.0f} s "
                    f"({filled.rate:.0f} records/s)",
                    flush=True,
                )
            notes.setdefault("load_avg", []).append(os.getloadavg()[0])
            size.catch_up_s = wait_caught_up(index_url, node_url)
            size.on_chain = on_chain
            one(probe, size, args)
            notes.setdefault("load_avg", []).append(os.getloadavg()[0])
            on_chain += size.load_records
            print(f"[reads] {report_line(size)}", flush=True)
    finally:
        run.down()
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Probe:
    """Where the reads go: the run, bank B's access (its node and its index) and the load."""

    run: Run
    access: Any  # BankAccess with bank B's index URL and token
    node_url: str
    index_url: str
    load_rate: float
    bank: str


def one(probe: Probe, size: Size, args: argparse.Namespace) -> None:
    """Idle reads, reads and lag under load, a rebuild, sizes: one size's measurements."""
    run, subject = probe.run, probe.run.read_subject
    start = time.monotonic() + READER_START_S
    reader = Reader(
        probe.access, subject, start=start, seconds=args.idle_seconds, rate=args.read_rate
    )
    size.idle = reader.result(args.idle_seconds + 120)
    lag = LagSampler(probe.node_url, probe.index_url)
    start = time.monotonic() + READER_START_S
    window = args.load_seconds - READER_START_S - 1
    reader = Reader(probe.access, subject, start=start, seconds=window, rate=args.read_rate)
    lag.start()
    threading.Timer(args.load_seconds, lag.stop.set).start()
    step = run.step("load", probe.load_rate, args.load_seconds)
    size.load = reader.result(args.load_seconds + 120)
    lag.stop.set()
    size.lags = lag.lags
    size.load_rate = step.send_rate
    size.load_kept_up = step.kept_up
    size.load_records = step.included * run.k
    service = indexes.service(run.local.layout, probe.bank)
    db = [service.home / n for n in ("index.sqlite", "index.sqlite-wal")]
    size.db_mb = sum(p.stat().st_size for p in db if p.exists()) / 2**20
    pid = service.pid()
    if pid is not None:
        size.index_rss_mb = psutil.Process(pid).memory_info().rss / 2**20
    if not args.no_rebuild:
        size.rebuild_s = rebuild(probe.index_url, timeout=7200).seconds


def report_line(s: Size) -> str:
    idle, load = s.idle, s.load
    return (
        f"{s.on_chain} records on chain: idle get from the index p50 {ms(pct(idle.index, 50))} "
        f"p99 {ms(pct(idle.index, 99))} (node p50 {ms(pct(idle.node, 50))} p99 "
        f"{ms(pct(idle.node, 99))}); under {s.load_rate:.0f} records/s: index p50 "
        f"{ms(pct(load.index, 50))} p99 {ms(pct(load.index, 99))} ({len(load.index)} gets, "
        f"{load.fallbacks} from the node), node p99 {ms(pct(load.node, 99))}; index lag p50 "
        f"{pct(s.lags, 50)} p99 {pct(s.lags, 99)} max {max(s.lags, default=-1)} blocks "
        f"({len(s.lags)} samples); catch-up {s.catch_up_s:.1f} s, rebuild {s.rebuild_s:.1f} s, "
        f"db {s.db_mb:.0f} MB, index RSS {s.index_rss_mb:.0f} MB; errors "
        f"{idle.errors or {}} {load.errors or {}}"
    )


def section(args: argparse.Namespace, sizes: list[Size], notes: dict[str, Any]) -> str:
    today = dt.date.today().isoformat()
    rows = [
        "| records on chain | fill (records/s) | index catch-up | idle get, index p50 / p99 "
        "| idle get, node p50 / p99 | under load: get, index p50 / p99 | fell back to node "
        "| node p99 | index lag p50 / p99 / max (blocks) | rebuild | index.sqlite | index RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sizes:
        rows.append(
            f"| {s.on_chain:,} | {'-' if math.isnan(s.fill_rate) else f'{s.fill_rate:.0f}'} "
            f"| {s.catch_up_s:.1f} s "
            f"| {ms(pct(s.idle.index, 50))} / {ms(pct(s.idle.index, 99))} "
            f"| {ms(pct(s.idle.node, 50))} / {ms(pct(s.idle.node, 99))} "
            f"| {ms(pct(s.load.index, 50))} / {ms(pct(s.load.index, 99))} "
            f"| {s.load.fallbacks} of {s.load.fallbacks + len(s.load.index)} "
            f"| {ms(pct(s.load.node, 99))} "
            f"| {pct(s.lags, 50)} / {pct(s.lags, 99)} / {max(s.lags, default=-1)} "
            f"| {s.rebuild_s:.1f} s | {s.db_mb:.0f} MB | {s.index_rss_mb:.0f} MB |"
        )
    small, large = sizes[0], sizes[-1]
    idle_ratio = pct(large.idle.index, 99) / pct(small.idle.index, 99)
    load_ratio = pct(large.load.index, 99) / pct(small.load.index, 99)
    worst_p99 = max(pct(s.load.index, 99) for s in sizes)
    worst_lag = max(max(s.lags, default=-1) for s in sizes)
    lag_p99 = max(pct(s.lags, 99) for s in sizes)
    filled = [s for s in sizes if not math.isnan(s.fill_rate)]
    fill_rate = filled[-1].fill_rate if filled else math.nan  # the longest fill: steadiest
    million_h = 1_000_000 / fill_rate / 3600 if not math.isnan(fill_rate) else math.nan

    def goal(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return "\n".join(
        [
            BEGIN,
            "## Reads from the per-bank read index as the chain grows (issue 20)",
            "",
            f"`.venv/bin/python -m scripts.bench.reads {' '.join(sys.argv[1:])}`, "
            + today
            + ", "
            + machine()
            + f", geth {geth_version()}; the machine's 1-minute load average after each fill "
            f"and each size's reads: {', '.join(f'{x:.1f}' for x in notes['load_avg'])} (2 cores). "
            "The default consortium (gas limit "
            f"{notes['gas_limit']:,}, period {notes['period']} s), its registry and one read index "
            "per bank started by `poactl up`; bank B's SDK `get` of a subject with 10 tradelines "
            f"(5 from each bank), {args.read_rate:g} a second from the index, one in "
            f"{5} also from the node; load: both banks furnish {args.batch_records}-record "
            f"batches open loop at {notes['load_rate']:g} records/s ({args.load_share} % of "
            f"{notes['saturation']:.0f}, "
            + (
                "the gas ceiling: gas limit / (30,000 x period)"
                if args.saturation == "gas"
                else "given"
            )
            + f") for {args.load_seconds:g} s; "
            "index lag: bank B's node head minus the index's block, every 100 ms.",
            "",
            *rows,
            "",
            f"- SDK `get` p99 under load: **{ms(worst_p99)}** (goal <= 20 ms: "
            f"{goal(worst_p99 <= 0.020)})",
            f"- p99 at {large.on_chain:,} vs {small.on_chain:,} records: idle "
            f"**{idle_ratio:.2f}**, "
            f"under load **{load_ratio:.2f}** (goal <= 1.2: "
            f"{goal(idle_ratio <= 1.2 and load_ratio <= 1.2)})",
            f"- index lag under load: p99 **{lag_p99} blocks**, max {worst_lag} (goal <= 1 block: "
            f"{goal(lag_p99 <= 1)})",
            f"- the last fill ran at {fill_rate:.0f} records/s: a chain of 1,000,000 "
            f"records takes about {million_h:.1f} h to build this way, plus a rebuild of about "
            f"{large.rebuild_s * 1_000_000 / max(large.on_chain, 1) / 60:.0f} min at 1,000,000 "
            "(linear from the largest size here) and the reads (minutes)",
            END,
        ]
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench.reads", description=(reads.__doc__ or "").splitlines()[0]
    )
    p.add_argument("--sizes", default="10000,100000", help="records on chain, ascending")
    p.add_argument("--batch-records", type=int, default=100)
    p.add_argument("--window", type=int, default=48, help="transactions in flight per bank")
    p.add_argument("--saturation", default="gas", help="records/s, or 'gas' (the ceiling)")
    p.add_argument("--load-share", type=float, default=70.0, help="%% of --saturation")
    p.add_argument("--load-seconds", type=float, default=30.0)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--read-rate", type=float, default=20.0, help="gets per second")
    p.add_argument("--no-rebuild", action="store_true", help="skip the timed rebuilds")
    p.add_argument("--port-base", type=int, default=22000)
    p.add_argument("--record", action="store_true", help="rewrite the section in the doc")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    sizes = [Size(int(x)) for x in args.sizes.split(",")]
    notes: dict[str, Any] = {}
    t0 = time.monotonic()
    measure(args, sizes, notes)
    print(f"[reads] done in {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    publish(BEGIN, END, section(args, sizes, notes), record_it=args.record)


if __name__ == "__main__":
    main()
