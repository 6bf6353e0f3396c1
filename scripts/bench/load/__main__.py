"""The load benchmark's command line: its options, the tuned and baseline configurations,
one `Run` per configuration and write mode (tuned/batch, tuned/single, baseline/batch,
baseline/single), the printed section and `--record`."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from .. import load
from ..common import record
from .report import BEGIN, END, section
from .run import Outcome, Run, measure
from .signing import MODES

CONFIGS = ("tuned", "baseline")

BASELINE_GAS = 30_000_000  # geth's private-network documentation (and geth's default)
# The tuned configuration's `tuning` section (orchestrator.config.Tuning):
# * cache_mb: geth's --cache (default 1024 MB); this chain's state is tiny, 128 MB holds it.
# * memory_limit_mb: GOMEMLIMIT for geth. Without it a node's RSS reached ~1 GB under this
#   load whatever --cache said: garbage the Go collector had not yet reclaimed. 200 MiB
#   held the nodes at 222 MB up to 118 writes/s, but 256 MiB after an overload (thousands
#   of transactions in every pool, 256 recent blocks of up to 2,000 writes in geth's block
#   caches, which no flag sizes) kept the collector busy: the nodes then fell behind even
#   at 84 writes/s. 512 MiB leaves that live heap room.
# * recommit_seconds: geth's miner re-fills the block it is sealing only every
#   --miner.recommit (default 2 s, the block period), so a write that misses the work
#   committed at the last head waits for the block after next; 1 s is geth's minimum.
# * txpool: each bank sends hundreds of transactions per block from one account; geth's
#   64 queued per account (nonce gaps while a batch arrives) drops the rest.
TUNED = {
    "cache_mb": 128,
    "memory_limit_mb": 512,
    "recommit_seconds": 1,
    "txpool_account_slots": 4096,
    "txpool_global_slots": 16384,
    "txpool_account_queue": 4096,
    "txpool_global_queue": 8192,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.load", description=(load.__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--configs",
        default="tuned,baseline",
        help="tuned: --gas-limit and --tuning; baseline: 30M gas, geth's defaults",
    )
    parser.add_argument(
        "--modes",
        default="batch,single",
        help="batch: furnish(entries) of --batch-records new records per transaction; "
        "single: report(...) of one",
    )
    parser.add_argument("--batch-records", type=int, default=100, help="records per batch")
    parser.add_argument("--gas-limit", type=int, default=500_000_000, help="tuned gas_limit")
    parser.add_argument(
        "--tuning",
        type=json.loads,
        default=TUNED,
        help=f"tuned: the consortium file's tuning section, as JSON [{json.dumps(TUNED)}]",
    )
    parser.add_argument(
        "--start-rate-single", type=float, default=100.0, help="records/s, single writes"
    )
    parser.add_argument(
        "--start-rate-batch", type=float, default=300.0, help="records/s, batch furnishing"
    )
    parser.add_argument("--max-rate", type=float, default=5000.0, help="records/s")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--measure-seconds", type=float, default=30.0)
    parser.add_argument("--idle-read-seconds", type=float, default=5.0)
    parser.add_argument(
        "--record", action="store_true", help="rewrite this benchmark's section of the doc"
    )
    return parser.parse_args()


def pick(given: str, known: tuple[str, ...], what: str) -> list[str]:
    """The names in `given` (comma-separated), in the order of `known`."""
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise SystemExit(f"unknown {what} {', '.join(unknown)!r}: {' or '.join(known)}")
    return [n for n in known if n in names]


def main() -> None:
    args = parse_args()
    configs = pick(args.configs, CONFIGS, "configuration")
    modes = pick(args.modes, MODES, "mode")
    if args.batch_records < 1:
        raise SystemExit("--batch-records: at least 1")
    flags = [f"--configs {','.join(configs)}", f"--modes {','.join(modes)}",
             f"--batch-records {args.batch_records}", f"--gas-limit {args.gas_limit}",
             f"--start-rate-single {args.start_rate_single:g}",
             f"--start-rate-batch {args.start_rate_batch:g}", f"--max-rate {args.max_rate:g}",
             f"--step-seconds {args.step_seconds:g}",
             f"--measure-seconds {args.measure_seconds:g}"]  # fmt: skip
    if args.tuning != TUNED:
        flags.append(f"--tuning '{json.dumps(args.tuning)}'")
    command = " ".join(
        [".venv/bin/python -m scripts.bench.load", *flags, *(["--record"] if args.record else [])]
    )
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="poa-load-", dir="/tmp"))
    outcomes: list[Outcome] = []
    runs: list[Run] = []
    durations: list[float] = []
    try:
        pairs = [(config, mode) for config in configs for mode in modes]
        for i, (config, mode) in enumerate(pairs):
            k, base = args.batch_records, 42000 + 500 * i
            if config == "baseline":
                run = Run(config, mode, k=k, gas_limit=BASELINE_GAS, work=work, port_base=base)
            else:
                run = Run(config, mode, k=k, gas_limit=args.gas_limit, work=work,
                          port_base=base, tuning=args.tuning)  # fmt: skip
            runs.append(run)
            t_run = time.monotonic()
            outcome = Outcome(run)
            outcomes.append(outcome)
            try:
                measure(outcome, args)
            except Exception as e:  # shown in the doc; the other runs still go
                traceback.print_exc()
                outcome.error = f"{type(e).__name__}: {e}"[:300]
            finally:
                run.down()
                durations.append(time.monotonic() - t_run)
                print(f"[{run.name}] done in {durations[-1]:.0f} s", flush=True)
    finally:
        for run in runs:
            run.down()
        shutil.rmtree(work, ignore_errors=True)
    text = section(outcomes, args, command)
    print(text)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.record:
        record(BEGIN, END, text)
    else:
        print("(not recorded: pass --record to rewrite the section in docs/benchmarks.md)")


if __name__ == "__main__":
    main()
