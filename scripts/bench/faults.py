"""Benchmark: the fault suite at a chosen size, tabled in docs/reliability.md.

Runs the scenarios of tests/faults/ (kill -9, freezes past the lease, partitions,
latency and bandwidth between banks, the store unreachable, a crash-looping geth, a full
disk, hostile peers), each in a fresh lab of its own (every node in its own network
namespace; root), under a steady write load through the banks' balancers, and judges
each with the independent checker. Then it runs the fuzzers at 10,000 cases each
(`--size full`) or a few hundred. Prints the table; `--record` rewrites its section of
docs/reliability.md with the date, the machine and the command.

    sudo .venv/bin/python -m scripts.bench.faults [--size ci|full] [--only kill9,freeze]
        [--no-fuzz] [--record]

`--size full` runs the issue's counts (50 kills, 20 freezes, 10 of each partition...):
about 2 h 30 min on a quiet 2-core machine; `--size ci` about 15 min.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from orchestrator.lab import topology
from tests.faults import disk, hostile, impostor, scenarios, three
from tests.faults.conftest import lab_unavailable
from tests.faults.harness import FaultLab, keep_files
from tests.faults.sizes import CI, FULL, Sizes
from tests.faults.verdict import Outcome

from .common import ROOT, bench_parser, geth_version, machine

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- bench_faults:begin -->", "<!-- bench_faults:end -->"
COLUMNS = ["scenario", "trials", "acked writes", "acked lost", "signed twice",
           "deepest acked reorg", "forked heights", "fault → stall s", "heal → block s",
           "heal → all at head s", "failed requests (late)"]  # fmt: skip

Scenario = Callable[[FaultLab], list[Outcome]]


def plan(size: Sizes) -> dict[str, Scenario]:
    """Name -> what runs in one fresh lab (in this order); `three` starts with a third
    bank joining."""
    s = size
    return {
        "kill9": lambda fl: [scenarios.kill9(fl, s.kill9)],
        "freeze": lambda fl: [
            *([scenarios.freeze(fl, s.freeze, seconds=s.freeze_seconds)] if s.freeze else []),
            scenarios.freeze(fl, s.freeze_stalled, seconds=s.freeze_seconds, stall_chain=True),
        ],
        "node": lambda fl: [scenarios.partition(
            fl, s.partition_node, seconds=s.partition_seconds, cut="node",
            label="partition 3 | 1 (a sealing node)")],
        "in-bank": lambda fl: [scenarios.partition(
            fl, s.partition_in_bank, seconds=s.partition_seconds, cut="bank",
            label="a node cut from its own bank")],
        "wan": lambda fl: [scenarios.wan(fl, latency_ms=ms, rate_kb=s.wan_rate_kb,
                                         seconds=s.wan_seconds) for ms in s.wan_latencies_ms],
        "store": lambda fl: [scenarios.store_unreachable(fl, s.store, seconds=s.store_seconds)],
        "crash": lambda fl: [_noted(*scenarios.crash_loop(fl)) for _ in range(s.crash)],
        "disk": lambda fl: [_noted(*disk.disk_full(fl)) for _ in range(s.disk)],
        "hostile": lambda fl: [
            *(_noted(*hostile.hostile_peer(fl, k)) for k in hostile.KINDS),
            _noted(*impostor.garbage_data(fl)),
        ],
        "three": lambda fl: [three.partition_third(fl, s)],
        "banks": lambda fl: [scenarios.partition(
            fl, s.partition_banks, seconds=s.partition_seconds, cut="banks",
            label="partition 2 | 2 (bank from bank)")],
    }  # fmt: skip


def _noted(outcome: Outcome, seen: dict[str, object]) -> Outcome:
    print(f"    seen: {seen}", flush=True)
    return outcome


def run(name: str, body: Scenario) -> list[dict[str, object]]:
    """`body` in a fresh lab; its rows, or one row saying how it failed."""
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    rows: list[dict[str, object]] = []
    try:
        with FaultLab.running(root / "lab", None) as fl:
            if name == "three":
                three.join_third_bank(fl)
            for outcome in body(fl):
                rows.append(outcome.row())
                print("    " + str(outcome.row()), flush=True)
                for (signer, height), blocks in outcome.signed_twice.items():
                    shown = [(b.hash[:10], b.parent[:10], b.difficulty, len(b.transactions),
                              b.seen_on) for b in blocks]  # fmt: skip
                    print(f"    signed twice: {signer} at {height}: {shown}", flush=True)
                for height, blocks in outcome.forked.items():
                    sibs = [(b.signer[:10], b.difficulty, b.seen_on) for b in blocks]
                    print(f"    forked at {height}: {sibs}", flush=True)
    except Exception as e:  # a scenario that did not recover is a figure too
        traceback.print_exc()
        rows.append({"scenario": name, "trials": "failed", "acked writes": "",
                     "notes": f"did not recover: {str(e).splitlines()[0][:160]}"})  # fmt: skip
    finally:
        if not keep_files():
            shutil.rmtree(root, ignore_errors=True)
    print(f"  [{name}: {time.monotonic() - t0:.0f} s]", flush=True)
    return rows


def fuzz(full: bool) -> str:
    env = {**os.environ, "POACTL_FUZZ": "full" if full else ""}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/faults/test_fuzz.py", "--hypothesis-show-statistics"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    counts = re.findall(r"(\d+) passing, (\d+) failing", done.stdout)
    total = re.search(r"(\d+ passed.*?) in ", done.stdout)
    cases = ", ".join(f"{ok} passing / {bad} failing" for ok, bad in counts) or "?"
    names = "JSON-RPC filter, furnishing reader, consortium file, Clique header parser"
    return (f"Fuzzers ({names}): {total.group(1) if total else done.stdout[-300:]}; "
            f"cases each: {cases}.")  # fmt: skip


def table(rows: list[dict[str, object]]) -> str:
    extra = sorted({k for r in rows for k in r if k not in COLUMNS and k != "notes"})
    head = [*COLUMNS, "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        notes = "; ".join(f"{k} {r[k]}" for k in extra if k in r)
        notes = "; ".join(x for x in (notes, str(r.get("notes", ""))) if x)
        cells = [str(r.get(c, "")) for c in COLUMNS] + [notes]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser("scripts.bench.faults", __doc__ or "")
    parser.add_argument("--size", choices=["ci", "full"], default="ci")
    parser.add_argument("--only", default="", help="comma-separated scenario groups")
    parser.add_argument("--no-fuzz", action="store_true")
    args = parser.parse_args()
    reason = lab_unavailable()
    if reason:
        raise SystemExit(f"the fault suite cannot run here: {reason}")
    topology.remove_stale()
    size = FULL if args.size == "full" else CI
    wanted = [w for w in args.only.split(",") if w]
    t0 = time.monotonic()
    rows: list[dict[str, object]] = []
    for name, body in plan(size).items():
        if not wanted or name in wanted:
            print(f"{name} ...", flush=True)
            rows += run(name, body)
    fuzzed = "" if args.no_fuzz else fuzz(args.size == "full")
    minutes = (time.monotonic() - t0) / 60
    command = "python -m scripts.bench.faults " + " ".join(sys.argv[1:])
    section = "\n".join([
        BEGIN,
        f"Measured {dt.date.today().isoformat()} on {machine()}, geth {geth_version()}, "
        f"`{command.strip()}` ({args.size} size, {minutes:.0f} min); the machine was shared "
        "with other work unless said otherwise. Times are median / max over the trials.",
        "",
        table(rows),
        "",
        fuzzed,
        END,
    ])  # fmt: skip
    print(section)
    if args.record:
        text = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
        DOC.write_text(text)
        print(f"recorded in {DOC}")


if __name__ == "__main__":
    main()
