"""The furnishing benchmark's command line: the runs, the printed summary and `--record`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

from .. import furnish
from ..common import geth_version, machine, publish
from .run import Breakdown, CliRun, Run, mean, spread_of, write_file

BEGIN, END = "<!-- bench_furnish:begin -->", "<!-- bench_furnish:end -->"
CONFIGS = ("default", "baseline")
GOAL_RATE = 1000.0  # records/s through the CLI, sustained
GOAL_SECONDS = 300.0  # ... over at least five minutes of one file
GOAL_RATIO = 3.0  # default / baseline
GOAL_RSS_MB = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.furnish",
        description=(furnish.__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--configs", default="default,baseline")
    parser.add_argument("--records", type=int, default=300_000, help="accounts in the file")
    parser.add_argument("--baseline-records", type=int, default=20_000,
                        help="accounts in the baseline's file (it is slower)")  # fmt: skip
    parser.add_argument("--update", action="store_true",
                        help="also furnish next month's file of the same accounts")  # fmt: skip
    parser.add_argument(
        "--override", type=json.loads, default={},
        help="JSON merged into the default configuration's consortium file (to try settings), "
        "e.g. '{\"gas_limit\": 100000000, \"tuning\": {\"recommit_seconds\": 1}}'",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=None, help="the CLI's --batch")
    parser.add_argument("--record", action="store_true", help="rewrite the section in the doc")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # `kill` (SIGTERM) stops the whole benchmark like Ctrl-C: the consortiums go down first.
    signal.signal(signal.SIGTERM, _interrupt)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not configs or set(configs) - set(CONFIGS):
        raise SystemExit(f"--configs: some of {', '.join(CONFIGS)}")
    flags = [f"--configs {','.join(configs)}", f"--records {args.records}",
             f"--baseline-records {args.baseline_records}"]  # fmt: skip
    flags += ["--update"] if args.update else []
    flags += [f"--override '{json.dumps(args.override)}'"] if args.override else []
    flags += [f"--batch {args.batch}"] if args.batch else []
    command = " ".join([".venv/bin/python -m scripts.bench.furnish", *flags, "--record"])
    work = Path(tempfile.mkdtemp(prefix="poa-furnish-", dir="/tmp"))
    runs: list[Run] = []
    started = time.monotonic()
    today = dt.date.today()
    try:
        for i, config in enumerate(configs):
            override = args.override if config == "default" else {}
            run = Run(config, work=work, port_base=44000 + 300 * i, override=override)
            run.batch = args.batch
            runs.append(run)
            records = args.records if config == "default" else args.baseline_records
            try:
                run.up()
                new = work / f"{config}-new.jsonl"
                write_file(new, records, seed=17 + i, as_of=today - dt.timedelta(days=31))
                first = run.furnish("new accounts", new, timeout=records / 20 + 600)
                run.analyse(first)
                run.furnish("the same file again", new, timeout=records / 200 + 300)
                if args.update:
                    later = work / f"{config}-update.jsonl"
                    write_file(later, records, seed=17 + i, as_of=today - dt.timedelta(days=1))
                    run.furnish("next month, the same accounts", later, records / 20 + 600)
            except (Exception, SystemExit) as e:  # shown in the summary; the others still go
                traceback.print_exc()
                run.error = f"{type(e).__name__}: {e}"[:400]
                print(run.status(), flush=True)
            finally:
                run.down()
    finally:
        for run in runs:
            run.down()
        if any(run.error for run in runs):
            print(f"kept {work} (state dirs and geth logs of the failed run)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    publish(BEGIN, END, section(runs, command), record_it=args.record)
    print(f"wall time {time.monotonic() - started:.0f} s")


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def section(runs: list[Run], command: str) -> str:
    lines = [
        BEGIN,
        "## Furnishing a file through the bank's balancer: `poactl credit furnish`",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}; "
        "the six nodes of each consortium, their agents, balancers, monitors and indexes, "
        "the CLI and the benchmark's watchers all share the machine's 2 cores (on separate "
        f"VMs each node has its own). Command: `{command}`.",
        "",
        "The real CLI (`poactl credit furnish --bank bank-a --format json`) through bank-a's "
        "balancer, on a new consortium per configuration; the file is JSON Lines of new "
        "accounts from the benchmark's own generator. Each node is watched directly "
        "(pending transactions and heads over WebSocket); Clique says who sealed each block; "
        "geth's log says how long each block took to import or build.",
        "",
    ]
    for run in runs:
        lines += _run_section(run)
    lines += _goals(runs)
    lines.append(END)
    return "\n".join(lines)


def _run_section(run: Run) -> list[str]:
    lines = [f"### {run.config}: {run.describe()}", ""]
    if run.error:
        lines += [f"The run stopped: {run.error}", ""]
    if not run.runs:
        return lines
    lines += [
        f"`poactl up` {run.up_seconds:.1f} s.",
        "",
        "| run | records written | transactions | already on chain | refused | sending phase | "
        "records/s (sending) | whole command | records/s (whole) | gas per record | "
        "CPU machine | CPU geths (1 core = 100) | CPU of the CLI |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in run.runs:
        d = r.doc
        whole = r.written / r.wall if r.wall else math.nan
        lines.append(
            f"| {r.label} | {r.written:,} | {d.get('batches', 0):,} | {d.get('unchanged', 0):,} | "
            f"{len(d.get('problems', []))} | {d.get('seconds', 0):.1f} s | {r.rate:,.0f} | "
            f"{r.wall:.1f} s | {whole:,.0f} | {r.gas_per_record:,.0f} | {r.cpu_machine:.0f} % | "
            f"{r.cpu_geths:.0f} % | {r.cpu_cli:.0f} % |"
        )
    first = run.runs[0]
    phases = first.doc.get("phases", {})
    lines += [
        "",
        "Where the first run's time went, as the CLI measured it: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in phases.items())
        + ".",
    ]
    b = run.breakdown
    if b.txs:
        records = b.records_per_block
        lines += [
            "",
            f"Its {b.txs:,} transactions ({b.tx_bytes:,} bytes of calldata each, "
            f"{'over' if b.tx_bytes > 4096 else 'under'} geth's 4 KB broadcast limit) in "
            f"{b.blocks} blocks (block gas limit {b.gas_limit:,}):",
            "",
            "| measure | figures |",
            "|---|---|",
            f"| first node with it pending -> the sealer of its block has it pending "
            f"(propagation) | {spread_of(b.propagation, 'ms')} |",
            "| ... -> that sealer seals the block (waiting in its pool) | "
            f"{spread_of(b.in_pool)} |",
            f"| first node with it pending -> sealed | {spread_of(b.inclusion)} |",
            f"| sealed -> the last of the six nodes has the block | {spread_of(b.spread)} |",
            f"| transactions per block (all) | mean {mean(b.txs_per_block):.1f}, "
            f"max {max(b.txs_per_block, default=0)}; {b.empty_blocks} empty |",
            f"| records of this run per block | mean {mean(records):,.0f}, "
            f"max {max(records, default=0):,} |",
            f"| gas used / gas limit | mean {100 * mean(b.fill):.0f} %, "
            f"max {100 * max(b.fill, default=0):.0f} % |",
            f"| geth importing a block from a peer (all nodes) | "
            f"{spread_of([t.seconds for t in b.imports])}; "
            f"{mean([t.mgas / t.seconds for t in b.imports if t.seconds > 0]):.0f} Mgas/s mean |",
            f"| a sealer building its block (work with transactions) | "
            f"{spread_of([t.seconds for t in b.builds])} |",
            f"| executions of each block, all nodes (every mining node builds the next block, "
            f"again at each recommit while transactions arrive; the others import it) | "
            f"{_executions(b)} |",
            f"| reorgs seen by one node (blocks replaced) | {b.reorgs} |",
            "| blocks sealed by | "
            + ", ".join(f"{n} {c}" for n, c in sorted(b.sealed_by.items()))
            + " |",
            f"| transactions the sealer's watcher never saw pending | {b.unseen_sealer} |",
        ]
    if run.sampler is not None:
        rss = ", ".join(
            f"{n} {run.rss_idle.get(n, 0) / 2**20:.0f} / {run.sampler.max_rss[n] / 2**20:.0f}"
            for n in sorted(run.sampler.max_rss)
        )
        lines += ["", f"RSS per geth, MB (idle after `up` / max): {rss}."]
    return [*lines, ""]


def _executions(b: Breakdown) -> str:
    """Builds and imports per block, and the builds of nodes that sealed none of them."""
    if not b.blocks:
        return "-"
    idle = sum(n for node, n in b.built_by.items() if not b.sealed_by.get(node))
    return (
        f"{sum(b.built_by.values()) / b.blocks:.1f} builds (of which "
        f"{idle / b.blocks:.1f} by nodes that sealed none of these blocks) + "
        f"{sum(b.imported_by.values()) / b.blocks:.1f} imports per block"
    )


def _goals(runs: list[Run]) -> list[str]:
    by = {r.config: r for r in runs}
    default = by.get("default")
    lines = ["Goals (issue 20), on the default consortium:", ""]
    if default is None or not default.runs:
        return [*lines, "- no default run", ""]
    first: CliRun = default.runs[0]
    seconds = float(first.doc.get("seconds", 0))
    sustained = first.rate >= GOAL_RATE and seconds >= GOAL_SECONDS
    verdict = "**met**" if sustained else "**NOT met**"
    lines.append(
        f"- `poactl credit furnish` >= {GOAL_RATE:,.0f} records/s sustained over >= "
        f"{GOAL_SECONDS / 60:.0f} minutes of one file: {first.rate:,.0f} records/s over "
        f"{seconds:.0f} s of sending ({first.written:,} records; "
        f"{first.written / first.wall:,.0f} records/s over the whole command, "
        f"{first.wall:.0f} s): {verdict}."
    )
    if default.sampler is not None:
        top = max(default.sampler.max_rss.values(), default=0) / 2**20
        ok = "**met**" if top <= GOAL_RSS_MB else "**NOT met**"
        lines.append(f"- RSS per geth <= {GOAL_RSS_MB} MB: max {top:.0f} MB: {ok}.")
    base = by.get("baseline")
    if base is not None and base.runs:
        ratio = first.rate / base.runs[0].rate if base.runs[0].rate else math.nan
        ok = "**met**" if ratio >= GOAL_RATIO else "**NOT met**"
        lines.append(
            f"- furnishing >= {GOAL_RATIO:g}x geth's private-network defaults (same command): "
            f"{ratio:.2f}x ({first.rate:,.0f} / {base.runs[0].rate:,.0f} records/s): {ok}."
        )
    return [*lines, ""]


if __name__ == "__main__":
    main()
