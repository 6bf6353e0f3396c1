#!/usr/bin/env python3
"""Benchmark: cold start and warm restart of the default four-signer consortium.

Cold start: `poactl up` on a new state dir until every validator has sealed a block
(keys, genesis, `geth init`, four geth processes, peering, sealing). Warm restart:
`poactl down` then `poactl up` on the same state dir. Each trial runs the real CLI as
a subprocess. Prints the figures and rewrites its section of docs/benchmarks.md with
the date and machine. Goal (issue 2): cold start <= 15 s with geth already built.

    .venv/bin/python scripts/bench_startup.py [--trials 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from orchestrator.local import port_is_free

ROOT = Path(__file__).resolve().parents[1]
POACTL = str(ROOT / ".venv" / "bin" / "poactl")
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_startup:begin -->", "<!-- bench_startup:end -->"
GOAL_COLD_S = 15.0


def free_base(span: int, start: int) -> int:
    """The first port >= start followed by `span` ports free on 127.0.0.1."""
    base = start
    while True:
        taken = [p for p in range(base, base + span) if not port_is_free(p)]
        if not taken:
            return base
        base = taken[-1] + 1


def bench_config(path: Path) -> None:
    """The shipped default consortium, moved to ports that are free right now."""
    text = (ROOT / "orchestrator" / "consortium.yaml").read_text()
    p2p, http, authrpc = free_base(8, 41000), free_base(8, 42000), free_base(8, 43000)
    text = re.sub(r"p2p: \d+", f"p2p: {p2p}", text)
    text = re.sub(r"http: \d+", f"http: {http}", text)
    path.write_text(re.sub(r"authrpc: \d+", f"authrpc: {authrpc}", text))


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([POACTL, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"
    )


def geth_version() -> str:
    out = subprocess.run(
        [str(ROOT / ".tools" / "bin" / "geth"), "version"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"^Version: (\S+)", out, re.M)
    return found.group(1) if found else "unknown"


def summary(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.1f} s, min {min(xs):.1f} s, max {max(xs):.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    cold, warm = [], []
    for i in range(args.trials):
        work = Path(tempfile.mkdtemp(prefix="poa-bench-", dir="/tmp"))
        config, state = work / "consortium.yaml", work / "state"
        bench_config(config)
        try:
            cold.append(timed("up", "--config", str(config), "--state-dir", str(state)))
            timed("down", "--state-dir", str(state))
            warm.append(timed("up", "--state-dir", str(state)))
            print(f"trial {i + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", flush=True)
        finally:
            subprocess.run(
                [POACTL, "down", "--state-dir", str(state)], check=False, capture_output=True
            )
            shutil.rmtree(work, ignore_errors=True)
    verdict = "met" if statistics.median(cold) <= GOAL_COLD_S else "NOT met"
    section = "\n".join([
        BEGIN,
        "## Start-up: `poactl up` until every validator has sealed",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}, "
        f"default consortium (2 banks x 2 validators, period 2 s), {args.trials} trials, "
        "real CLI as a subprocess. Command: `.venv/bin/python scripts/bench_startup.py "
        f"--trials {args.trials}`.",
        "",
        "| phase | figures |",
        "|---|---|",
        f"| cold start (new state dir: keys, genesis, geth init, start, seal) | {summary(cold)} |",
        f"| warm restart (`down`, then `up` on the same state dir) | {summary(warm)} |",
        "",
        f"Goal: cold start <= {GOAL_COLD_S:.0f} s with geth already built: **{verdict}**.",
        "Each validator has to seal once, so a run takes at least about two rounds of",
        "four signers at 2 s unless signers are lucky with Clique's out-of-turn timing.",
        END,
    ])  # fmt: skip
    print(section)
    DOC.parent.mkdir(exist_ok=True)
    text = (
        DOC.read_text()
        if DOC.exists()
        else "# Benchmarks\n\nFigures from `scripts/bench_*.py`; rerun them to refresh.\n"
    )
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
