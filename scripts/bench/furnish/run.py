"""One configuration's run: its consortium, the file, the CLI runs, and the breakdown of
where the first run's time went (from the watchers, Clique and geth's logs)."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

from orchestrator.config import parse_config
from orchestrator.local.consortium import LocalConsortium

from ..common import POACTL, ROOT, geth_pids, move_ports, pct, poactl_up
from ..load.traffic import Sampler
from .watch import GethTiming, NodeWatch, geth_timings, raw_call, sealers

UP_TIMEOUT_S = 240.0
BASELINE = {"gas_limit": 30_000_000, "tuning": {}}  # geth's private-network documentation
PORTFOLIOS = {"C": "15", "I": "00", "M": "26", "O": "48", "R": "18"}  # type -> account type


def write_file(path: Path, records: int, *, seed: int, as_of: dt.date) -> None:
    """`records` accounts as JSON Lines, reported `as_of` (new accounts on the first run,
    the same accounts again, changed, on a later date)."""
    rnd = random.Random(seed)  # noqa: S311 - test data, not a secret
    with path.open("w") as out:
        for i in range(records):
            portfolio = rnd.choice(sorted(PORTFOLIOS))
            balance = rnd.randint(0, 90_000)
            late = rnd.random() < 0.1
            history = "".join(rnd.choice("0000001" if late else "0") for _ in range(12))
            row = {
                "national_id": f"9{seed % 100:02d}-{i // 10_000:02d}-{i % 10_000:04d}",
                "account_number": f"B{seed:03d}{i:09d}",
                "portfolio_type": portfolio,
                "account_type": PORTFOLIOS[portfolio],
                "date_opened": (as_of - dt.timedelta(days=40 + (i * 7919) % 3650)).isoformat(),
                "date_of_account_information": as_of.isoformat(),
                "credit_limit": balance + 5_000 if portfolio in "CR" else 0,
                "highest_credit": balance + rnd.randint(0, 20_000),
                "current_balance": balance,
                "account_status": "71" if late and history[0] == "1" else "11",
                "amount_past_due": min(balance, 250) if late and history[0] == "1" else 0,
                "payment_history": history + "B" * 12,
                "surname": "NOT READ",
            }
            out.write(json.dumps(row) + "\n")


@dataclass
class CliRun:
    """One `poactl credit furnish` run: the CLI's JSON and the wall time around it."""

    label: str
    wall: float
    doc: dict[str, Any]
    cpu_machine: float = math.nan  # %, all cores = 100
    cpu_geths: float = math.nan  # % of one core
    cpu_cli: float = math.nan  # % of one core

    @property
    def written(self) -> int:
        return int(self.doc.get("written", 0))

    @property
    def rate(self) -> float:
        return float(self.doc.get("records_per_second", 0.0))

    @property
    def gas_per_record(self) -> float:
        return self.doc.get("gas_used", 0) / self.written if self.written else math.nan


@dataclass
class Breakdown:
    """Where the first run's time went, per transaction and per block."""

    txs: int = 0
    tx_bytes: int = 0
    propagation: list[float] = field(default_factory=list)  # first pending -> sealer pending
    in_pool: list[float] = field(default_factory=list)  # sealer pending -> sealed
    inclusion: list[float] = field(default_factory=list)  # first pending -> sealed
    spread: list[float] = field(default_factory=list)  # sealed -> the last node has it
    blocks: int = 0
    empty_blocks: int = 0
    txs_per_block: list[int] = field(default_factory=list)
    records_per_block: list[int] = field(default_factory=list)
    fill: list[float] = field(default_factory=list)  # gasUsed / gasLimit
    gas_limit: int = 0
    imports: list[GethTiming] = field(default_factory=list)
    builds: list[GethTiming] = field(default_factory=list)
    reorgs: int = 0
    sealed_by: Counter[str] = field(default_factory=Counter)
    built_by: Counter[str] = field(default_factory=Counter)  # builds with transactions
    imported_by: Counter[str] = field(default_factory=Counter)
    unseen_sealer: int = 0  # transactions the sealer's watcher never saw pending


class Run:
    """A configuration's consortium (`default` or `baseline`) and what is measured on it."""

    def __init__(
        self, config: str, *, work: Path, port_base: int, override: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        self.state = work / f"state-{config}"
        self.config_file = work / f"consortium-{config}.yaml"
        doc = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
        if config == "baseline":
            doc.update(BASELINE)
        doc.update(override or {})
        self.batch: int | None = None  # the CLI's --batch (None: its default)
        move_ports(doc, port_base)
        self.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.consortium = parse_config(self.config_file.read_text(), source=str(self.config_file))
        self.local = LocalConsortium(self.state)
        self.settings = self.consortium.settings
        self.up_seconds = math.nan
        self.watches: dict[str, NodeWatch] = {}
        self.sampler: Sampler | None = None
        self.runs: list[CliRun] = []
        self.breakdown = Breakdown()
        self.rss_idle: dict[str, int] = {}
        self.error = ""

    def describe(self) -> str:
        s = self.settings
        tuning = json.dumps(s.tuning.model_dump(exclude_none=True))
        batch = f", --batch {self.batch}" if self.batch else ""
        return f"gas_limit {s.gas_limit:,}, tuning {tuning}{batch}"

    def up(self) -> None:
        self.up_seconds = poactl_up(
            self.config_file, self.state, label=self.config, timeout=UP_TIMEOUT_S
        )
        print(f"[{self.config}] poactl up {self.up_seconds:.1f} s ({self.describe()})", flush=True)
        pids = geth_pids(self.local, [n.name for n in self.consortium.nodes])
        for node in self.consortium.nodes:
            url = node.rpc_url.replace("http://", "ws://")
            self.watches[node.name] = NodeWatch(node.name, url)
        for watch in self.watches.values():
            watch.start()
        self.sampler = Sampler(pids)
        self.sampler.start()
        self.sampler.sample()
        self.rss_idle = dict(self.sampler.last_rss)

    def furnish(self, label: str, path: Path, timeout: float) -> CliRun:
        """The real CLI through bank-a's balancer (the local resolver's default)."""
        assert self.sampler is not None
        argv = [POACTL, "credit", "furnish", "--bank", "bank-a", "--file", str(path),
                "--format", "json", "--state-dir", str(self.state), "--timeout", "900"]  # fmt: skip
        argv += ["--batch", str(self.batch)] if self.batch else []
        geths0 = self.sampler.cpu_seconds()
        psutil.cpu_percent(None)
        out_file = self.state.parent / f"furnish-{len(self.runs)}.out"
        err_file = self.state.parent / f"furnish-{len(self.runs)}.err"
        t0 = time.monotonic()
        # Files, not pipes: the CLI's JSON (every transaction hash) would fill a pipe that
        # nobody reads until it exits, and it would never exit.
        with out_file.open("w") as out_w, err_file.open("w") as err_w:
            proc = subprocess.Popen(argv, stdout=out_w, stderr=err_w, text=True)
            child = psutil.Process(proc.pid)
            cli_cpu = 0.0
            while proc.poll() is None:
                try:
                    t = child.cpu_times()
                    cli_cpu = t.user + t.system
                except psutil.Error:
                    pass
                time.sleep(0.5)
                if time.monotonic() - t0 > timeout:
                    proc.kill()
        wall = time.monotonic() - t0
        out, err = out_file.read_text(), err_file.read_text()
        if proc.returncode not in (0, 1) or not out.strip().startswith("{"):
            raise SystemExit(f"[{self.config}] furnish failed ({proc.returncode}):\n{err[-3000:]}")
        run = CliRun(label, wall, json.loads(out))
        run.cpu_machine = psutil.cpu_percent(None)
        run.cpu_geths = 100 * (self.sampler.cpu_seconds() - geths0) / wall
        run.cpu_cli = 100 * cli_cpu / wall
        self.runs.append(run)
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in run.doc.get("phases", {}).items())
        print(f"[{self.config}] {label}: {run.written} records in {run.doc.get('batches')} "
              f"transactions, {run.rate:.0f} records/s over {run.doc.get('seconds', 0):.1f} s "
              f"of sending, {wall:.1f} s in all ({phases}); {run.doc.get('unchanged')} already "
              f"on chain, {len(run.doc.get('problems', []))} refused", flush=True)  # fmt: skip
        return run

    # -- the breakdown -------------------------------------------------------------------

    def _answering_node(self, timeout: float = 120.0) -> Any:
        """The first node that answers (an agent may be restarting a node that fell behind
        under the load: its geth is away for a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.consortium.nodes:
                if _answers(node.rpc_url):
                    return node
            if time.monotonic() > deadline:
                raise SystemExit(f"[{self.config}] no node answers to read the blocks from")
            time.sleep(1.0)

    def analyse(self, run: CliRun) -> None:
        """Where `run`'s transactions spent their time (the first run's, new records)."""
        b = self.breakdown
        hashes: list[str] = list(run.doc.get("tx_hashes", []))
        first_node = self._answering_node()
        where, blocks = _blocks_of(first_node.rpc_url, hashes)
        if not where:
            return
        tx = raw_call(first_node.rpc_url, "eth_getTransactionByHash", [hashes[0]])
        b.tx_bytes = (len(tx["input"]) - 2) // 2 if isinstance(tx, dict) else 0
        per_tx = run.written / len(hashes)
        ours = set(hashes)
        by_signer = {s.lower(): n for n, s in self.local.signers().items()}
        sealed_by = sealers(self.local.layout.node(first_node.name).ipc, blocks)
        b.txs, b.blocks = len(where), len(blocks)
        b.gas_limit = max((int(x["gasLimit"], 16) for x in blocks.values()), default=0)
        for n, block in blocks.items():
            mine = [h for h in block["transactions"] if h in ours]
            b.txs_per_block.append(len(block["transactions"]))
            b.records_per_block.append(round(len(mine) * per_tx))
            b.fill.append(int(block["gasUsed"], 16) / int(block["gasLimit"], 16))
            b.empty_blocks += not block["transactions"]
            node = by_signer.get(sealed_by.get(n, ""), "?")
            b.sealed_by[node] += 1
            self._transactions(node, block["hash"], mine)
        lo, hi = min(where.values()), max(where.values())
        for name, watch in self.watches.items():
            numbers = Counter(h.number for h in watch.heads if lo <= h.number <= hi)
            b.reorgs = max(b.reorgs, sum(c - 1 for c in numbers.values()))
            imports, builds = geth_timings(self.local.layout.node(name).geth_log, lo, hi)
            b.imports += imports
            b.builds += builds
            b.built_by[name] += len(builds)
            b.imported_by[name] += len(imports)

    def _transactions(self, sealer: str, block_hash: str, mine: list[str]) -> None:
        """The block's spread to the other nodes and its transactions' propagation."""
        b = self.breakdown
        sealed = self._head_time(sealer, block_hash)
        if sealed is None:
            return
        seen = [t for w in self.watches if (t := self._head_time(w, block_hash)) is not None]
        if seen:
            b.spread.append(max(seen) - sealed)
        for h in mine:
            pending = [w.pending[h] for w in self.watches.values() if h in w.pending]
            if not pending:
                continue
            first = min(pending)
            b.inclusion.append(sealed - first)
            at_sealer = self.watches[sealer].pending.get(h) if sealer in self.watches else None
            if at_sealer is None:
                b.unseen_sealer += 1
                continue
            b.propagation.append(at_sealer - first)
            b.in_pool.append(sealed - at_sealer)

    def _head_time(self, node: str, block_hash: str) -> float | None:
        watch = self.watches.get(node)
        if watch is None:
            return None
        return next((h.seen for h in watch.heads if h.hash == block_hash), None)

    def status(self) -> str:
        """`poactl status` of this consortium (after a failure: which node is stuck)."""
        done = subprocess.run(
            [POACTL, "status", "--state-dir", str(self.state)],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout + done.stderr

    def down(self) -> None:
        for watch in self.watches.values():
            watch.stop.set()
        if self.sampler is not None:
            self.sampler.stop.set()
        subprocess.run(
            [POACTL, "down", "--state-dir", str(self.state)], check=False, capture_output=True
        )


def _answers(url: str) -> bool:
    try:
        return raw_call(url, "eth_blockNumber", []) is not None
    except (requests.RequestException, ValueError):
        return False


def _blocks_of(url: str, hashes: list[str]) -> tuple[dict[str, int], dict[int, dict[str, Any]]]:
    """(transaction -> its block number, every block from the first to the last of them)."""
    where: dict[str, int] = {}
    for h in hashes:
        receipt = raw_call(url, "eth_getTransactionReceipt", [h])
        if isinstance(receipt, dict):
            where[h] = int(receipt["blockNumber"], 16)
    blocks: dict[int, dict[str, Any]] = {}
    if where:
        for n in range(min(where.values()), max(where.values()) + 1):
            block = raw_call(url, "eth_getBlockByNumber", [hex(n), False])
            if isinstance(block, dict):
                blocks[n] = block
    return where, blocks


def spread_of(xs: list[float], unit: str = "s") -> str:
    """p50 / p90 / max of `xs` in seconds (or ms)."""
    if not xs:
        return "-"
    scale, fmt = (1000.0, "{:.0f}") if unit == "ms" else (1.0, "{:.2f}")
    parts = [fmt.format(pct(xs, q) * scale) for q in (50, 90)]
    return f"p50 {parts[0]} {unit}, p90 {parts[1]} {unit}, max {fmt.format(max(xs) * scale)} {unit}"


def mean(xs: list[float] | list[int]) -> float:
    return statistics.fmean(xs) if xs else math.nan
