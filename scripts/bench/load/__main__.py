"""The load benchmark's command line: its options, the default and baseline configurations,
one `Run` per configuration and write mode (default/batch, default/single, baseline/batch,
baseline/single), the printed section and `--record`."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from orchestrator.credit.furnish import BATCH_RECORDS

from .. import load
from ..common import record
from .report import BEGIN, END, section
from .run import Outcome, Run, measure
from .signing import MODES

CONFIGS = ("default", "baseline")

# geth's private-network documentation (30M gas, geth's defaults): the baseline.
BASELINE = {"gas_limit": 30_000_000, "tuning": {}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.load", description=(load.__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--configs",
        default="default,baseline",
        help="default: the shipped orchestrator/consortium.yaml (with --override); "
        "baseline: 30M gas, geth's defaults",
    )
    parser.add_argument(
        "--modes",
        default="batch,single",
        help="batch: furnish(entries) of --batch-records new records per transaction; "
        "single: report(...) of one",
    )
    parser.add_argument(
        "--batch-records", type=int, default=BATCH_RECORDS,
        help="records per batch (the CLI's default)",
    )  # fmt: skip
    parser.add_argument(
        "--override", type=json.loads, default={},
        help="JSON merged into the default configuration's consortium file, to try settings",
    )  # fmt: skip
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
             f"--batch-records {args.batch_records}",
             f"--start-rate-single {args.start_rate_single:g}",
             f"--start-rate-batch {args.start_rate_batch:g}", f"--max-rate {args.max_rate:g}",
             f"--step-seconds {args.step_seconds:g}",
             f"--measure-seconds {args.measure_seconds:g}"]  # fmt: skip
    if args.override:
        flags.append(f"--override '{json.dumps(args.override)}'")
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
            override = BASELINE if config == "baseline" else args.override
            run = Run(config, mode, k=k, work=work, port_base=base, override=override)
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
