"""Benchmark: cold start and warm restart of the default consortium (six agents).

The shipped default (orchestrator/consortium.yaml) is two banks, each with two validator
identities and one spare: six agents, four Clique signers. Cold start: `poactl up` on a
new state dir until it returns, i.e. until every identity is held and has sealed a
block: six agents start, each bank's leader takes its leader lease and creates the
bank's validator keys in the bank's vault, the founder's leader publishes the genesis,
every agent runs `geth init` and starts geth, four agents take identity leases, read
their keys from the vault and seal, and the two spares follow. Warm restart:
`poactl down` (agents release their leases) then `poactl up` on the same state dir
(keys and genesis exist; leases are taken again). Each trial runs the real CLI as a
subprocess, on ports that are free right now. Prints the figures; with `--record` it
rewrites its section of docs/benchmarks.md with the date and machine. Goal (issue 2):
cold start <= 15 s with geth already built.

    .venv/bin/python -m scripts.bench.startup [--trials 5] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from .common import POACTL, ROOT, geth_version, machine, move_ports, publish, summary

BEGIN, END = "<!-- bench_startup:begin -->", "<!-- bench_startup:end -->"
GOAL_COLD_S = 15.0


def bench_config(path: Path) -> None:
    """The shipped default consortium, moved to ports that are free right now."""
    config = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
    move_ports(config, 41000)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([POACTL, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--record", action="store_true", help="rewrite this benchmark's section of the doc"
    )
    args = parser.parse_args()
    cold, warm = [], []
    for i in range(args.trials):
        work = Path(tempfile.mkdtemp(prefix="poa-bench-", dir="/tmp"))
        config, state = work / "consortium.yaml", work / "state"
        bench_config(config)
        try:
            cold.append(
                timed("up", "--no-deploy", "--config", str(config), "--state-dir", str(state))
            )
            timed("down", "--state-dir", str(state))
            warm.append(timed("up", "--no-deploy", "--state-dir", str(state)))
            print(f"trial {i + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", flush=True)
        finally:
            subprocess.run(
                [POACTL, "down", "--state-dir", str(state)], check=False, capture_output=True
            )
            shutil.rmtree(work, ignore_errors=True)
    verdict = "met" if statistics.median(cold) <= GOAL_COLD_S else "NOT met"
    flags = f"--trials {args.trials} --record"
    section = "\n".join([
        BEGIN,
        "## Start-up: `poactl up` until every validator identity has sealed",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}, "
        "default consortium (2 banks x (2 validators + 1 spare) = 6 agents, 4 signers, "
        f"period 2 s, local store and vaults), {args.trials} trials, real CLI as a "
        f"subprocess. Command: `.venv/bin/python -m scripts.bench.startup {flags}`.",
        "",
        "| phase | figures |",
        "|---|---|",
        "| cold start (new state dir: 6 agents, leader leases, keys into the vaults, "
        "genesis by the founder's leader, geth init, identity leases, 4 identities seal) | "
        f"{summary(cold)} |",
        "| warm restart (`down` releases the leases, then `up` on the same state dir) | "
        f"{summary(warm)} |",
        "",
        f"Goal: cold start <= {GOAL_COLD_S:.0f} s with geth already built: **{verdict}**.",
        "`up` returns when every identity is held and has sealed a block after `up` first",
        "saw the chain, so a run takes at least about two rounds of four signers at 2 s",
        "unless signers are lucky with Clique's out-of-turn timing. Measured with",
        "`up --no-deploy` (as in issue 2); deploying the credit registry, which `up` does",
        "by default, adds about one to two blocks.",
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
