"""This benchmark's section of docs/benchmarks.md: per run (configuration x write mode) its
steps, saturation, the block-gas-limit cap, reads and inclusion at 50/70/90 %, RSS and gas
per record; the default / baseline ratios per mode; the goals of issues 14 and 20."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics

from ..common import geth_version, machine, pct
from .run import BISECTIONS, STEP_FACTOR, Outcome, Run
from .signing import FAST_SIGNING
from .step import Step, ms, sec
from .traffic import POLL_S, READ_RATE, TICK_S

BEGIN, END = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"
HEADING = (
    "## Credit-record load: batch furnishing and single writes, reads under load, RSS, CPU, gas"
)
GOAL_RATE = {"batch": 1500.0, "single": 400.0}  # records/s, the default consortium (issue 20)
GOAL_RATIO = 3.0  # default / baseline saturation, each mode
GOAL_P50_70_S = 2.0
GOAL_P99_70_S = 3.0
GOAL_RAW_P99_MS = 25.0
GOAL_SDK_P99_MS = 50.0
GOAL_RSS_MB = 300.0
WHAT = {"batch": "batch furnishing", "single": "single writes"}


def fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} (x{v})" for k, v in errors.items()) or "none"


def mb(n: float) -> str:
    return f"{n / 2**20:.0f}"


def rate(x: float | None) -> str:
    return f"{x:g} records/s" if x else "not found"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def given(r: Run) -> str:
    """What the tuning section gives every geth: its flags and its environment."""
    tuning = r.consortium.settings.tuning
    env = "".join(f" and {k}={v} in its environment" for k, v in tuning.environment().items())
    return f"`{' '.join(tuning.flags())}`{env}"


def intro(args: argparse.Namespace, command: str) -> list[str]:
    signing = (
        "coincurve/libsecp256k1 + rlp, byte-identical to eth_account"
        if FAST_SIGNING
        else "eth_account; coincurve not installed"
    )
    return [
        BEGIN,
        HEADING,
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}; "
        "default consortium (2 banks x (2 validators + 1 spare) = 6 agents / 6 geth nodes, "
        "4 signers, period 2 s, local store and vaults), each run (configuration x write "
        f"mode) on its own new consortium through the real CLI. Command: `{command}`.",
        "",
        "Load, in records/s: *batch* furnishing sends `furnish(entries)` transactions of "
        f"{args.batch_records} records each; *single* writes send `report(subject, furnisher, "
        "accountRef, record)` transactions of one record (the furnisher: the bank's admin "
        "account). Every record is a new tradeline of a new subject (a pseudonym under the "
        "consortium secret), so every record is a real write. Transactions are signed locally "
        "with bank-a's and bank-b's transaction keys (alternating) and sent raw to each "
        "bank's own first node (directly, not through the bank's balancer); all "
        f"transactions of a step are signed before it ({signing}), "
        "then sent open loop (a step at R records/s sends round(R x seconds / K) transactions "
        "of K records, transaction i due at i x K / R) in one JSON-RPC batch per bank every "
        f"{TICK_S * 1000:.0f} ms. Record inclusion = the transaction's latency: send -> seen "
        "in a block on the submitting bank's node (head polled every "
        f"{POLL_S * 1000:.0f} ms). A step keeps up when every transaction is in a block within "
        "3 periods of the last send and the p99 of its second half is <= 3 periods; the rate "
        f"grows x{STEP_FACTOR:g} from {args.start_rate_batch:g} (batch) or "
        f"{args.start_rate_single:g} (single) records/s up to {args.max_rate:g}, then "
        f"{BISECTIONS} bisection steps; saturation = the highest rate that kept up. Reads, "
        f"from Bank B's own first node (directly) at {READ_RATE:.0f}/s in a separate process, "
        "of one subject "
        "with 10 tradelines, 5 from each bank: the SDK get (block number + eth_getLogs, "
        "`CreditClient.get`) and a raw eth_call (`states` of its 10 tradelines). CPU: the "
        "machine's (all cores = 100 %), the six geths' and the generator's (one core = "
        "100 %) over the sending phase; RSS of each geth sampled every second.",
        "",
    ]


def steps_table(r: Run) -> list[str]:
    lines = [
        "| step | rate records/s | txs sent | send rate records/s | in time | p50 | p99 | "
        "p99 2nd half | max | blocks (step + drain) | txs/block mean/max | gas fill max | "
        "CPU machine | CPU geths (1 core=100) | CPU generator | txpool pend/queued at end | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for st in r.steps:
        pool = ", ".join(f"{n} {v}" for n, v in st.txpool.items())
        why = "kept up" if st.kept_up else f"fell behind: {st.why}"
        lines.append(
            f"| {st.label} | {st.rate:g} | {st.sent} | {st.send_rate:.1f} | "
            f"{st.included - st.late}/{st.sent} | {sec(st.p50)} | {sec(st.p99)} | "
            f"{sec(st.p99_second_half)} | {sec(st.max_latency)} | {st.blocks} | "
            f"{st.mean_txs_block:.0f}/{st.max_txs_block} | {st.max_gas_fill:.0%} | "
            f"{st.cpu_machine:.0f} % | {st.cpu_geths:.0f} % | {st.cpu_generator:.0f} % | "
            f"{pool} | {why} |"
        )
    return lines


def cap_line(r: Run) -> str:
    if not r.gas:
        return "The block gas limit's cap: not computed (no receipts sampled)."
    per_tx = statistics.mean(r.gas)
    per_block = r.gas_limit // round(per_tx) * r.k
    return (
        f"The block gas limit alone caps this run at {per_block:,} records per block = "
        f"{per_block / r.period:,.0f} records/s ({r.gas_limit:,} / {per_tx:,.0f} gas per "
        f"transaction of {r.k} record{'s' if r.k > 1 else ''})."
    )


def load_table(o: Outcome) -> list[str]:
    r = o.run
    lines = [
        "| load | rate records/s | inclusion p50 | inclusion p99 | SDK get p50 | get p99 | "
        "get max | raw eth_call p50 | eth_call p99 | send errors | read errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| idle (no writes) | 0 | - | - | {ms(pct(r.idle_reads, 50))} | "
        f"{ms(pct(r.idle_reads, 99))} | {ms(max(r.idle_reads, default=math.nan))} | "
        f"{ms(pct(r.idle_raw, 50))} | {ms(pct(r.idle_raw, 99))} | - | "
        f"{fmt_errors(r.idle_read_errors)} |",
    ]
    for share, st in o.measured.items():
        lines.append(
            f"| {share} % of saturation | {st.rate:g} | {sec(st.p50)} | {sec(st.p99)} | "
            f"{ms(pct(st.reads, 50))} | {ms(pct(st.reads, 99))} | "
            f"{ms(max(st.reads, default=math.nan))} | {ms(pct(st.raw_reads, 50))} | "
            f"{ms(pct(st.raw_reads, 99))} | {fmt_errors(st.errors)} | "
            f"{fmt_errors(st.read_errors)} |"
        )
    return lines


def run_section(o: Outcome) -> list[str]:
    r = o.run
    what = f"gas_limit {r.gas_limit:,} in the consortium file (genesis + --miner.gaslimit), " + (
        f"`tuning: {json.dumps(r.tuning)}` (every geth gets {given(r)})"
        if r.tuning
        else "no `tuning` section (geth's default cache, memory limit, recommit and txpool): "
        "geth's private-network documentation settings"
    )
    mode = (
        f"`furnish` of {r.k} new records per transaction"
        if r.mode == "batch"
        else "`report` of one new record per transaction"
    )
    lines = [
        f"### {r.name}: {mode}; {what}",
        "",
        f"`poactl up` {r.up_seconds:.1f} s; signers held by "
        + ", ".join(sorted(r.signers))
        + f"; writes sent to {', '.join(f'{ln.bank} -> {ln.node}' for ln in r.lanes)}; "
        f"reads from {r.reader_node}.",
        "",
        *steps_table(r),
    ]
    if o.error:
        lines += ["", f"**This run stopped early: {o.error}**"]
    lines += ["", f"Saturation: **{rate(o.saturation)}**", cap_line(r)]
    if o.measured:
        lines += ["", *load_table(o)]
    sampler = r.sampler
    lines += [
        "",
        "RSS per geth node, MB (idle after `up` / max during the run / at the end): "
        + "; ".join(
            f"{n}{' (signer)' if n in r.signers else ''} {mb(r.rss_idle.get(n, 0))} / "
            f"{mb(sampler.max_rss[n])} / {mb(sampler.last_rss[n])}"
            for n in sampler.max_rss
        )
        + "."
        if sampler
        else "RSS: not sampled.",
        "",
        (
            f"Gas per record (receipts of {len(r.gas)} sampled transactions of {r.k} "
            f"record{'s' if r.k > 1 else ''}, gasUsed / {r.k}): mean "
            f"{statistics.mean(r.gas) / r.k:,.0f}, min {min(r.gas) / r.k:,.0f}, max "
            f"{max(r.gas) / r.k:,.0f}; {r.receipt_failures} reverted; gas limit per "
            f"transaction {r.lanes[0].signer.gas:,}. Reorgs seen by the observers: "
            f"{sum(ob.reorgs for ob in r.observers.values())}."
            if r.gas
            else "Gas per record: no receipts sampled."
        ),
        "",
    ]
    return lines


def section(outcomes: list[Outcome], args: argparse.Namespace, command: str) -> str:
    lines = intro(args, command)
    for o in outcomes:
        lines += run_section(o)
    by = {o.run.name: o for o in outcomes}
    ratios = []
    for mode in WHAT:
        t, b = by.get(f"default/{mode}"), by.get(f"baseline/{mode}")
        if t and b:
            x = f"{t.saturation / b.saturation:.2f}" if t.saturation and b.saturation else "n/a"
            ratios.append(f"{mode} **{x}** ({rate(t.saturation)} / {rate(b.saturation)})")
    if ratios:
        lines += [
            "Ratio default / baseline (geth private-network settings) saturation: "
            + "; ".join(ratios)
            + ".",
            "",
        ]
    lines += goals(outcomes)
    lines.append(END)
    return "\n".join(lines)


def at70(st: Step | None) -> tuple[str, str]:
    """(inclusion, reads) goal lines' figures at 70 % of saturation."""
    if st is None:
        return "not measured: **NOT met**", "not measured: **NOT met**"
    p50, p99 = st.p50, st.p99
    raw, sdk = pct(st.raw_reads, 99), pct(st.reads, 99)
    inclusion = f"p50 {sec(p50)}, p99 {sec(p99)} at {st.rate:g} records/s: " + verdict(
        p50 <= GOAL_P50_70_S and p99 <= GOAL_P99_70_S
    )
    reads = f"raw eth_call p99 {ms(raw)}, SDK get p99 {ms(sdk)}: " + verdict(
        raw * 1000 <= GOAL_RAW_P99_MS and sdk * 1000 <= GOAL_SDK_P99_MS
    )
    return inclusion, reads


def goals(outcomes: list[Outcome]) -> list[str]:
    by = {o.run.name: o for o in outcomes}
    lines = ["Goals (issues 14 and 20), on the default runs:", ""]
    for mode, goal in GOAL_RATE.items():
        t = by.get(f"default/{mode}")
        lines.append(
            f"- {WHAT[mode]} >= {goal:,.0f} records/s: "
            + (
                f"saturation {rate(t.saturation)}: {verdict((t.saturation or 0) >= goal)}."
                if t
                else f"default/{mode} not run: **not measured**."
            )
        )
    for mode in GOAL_RATE:
        t, b = by.get(f"default/{mode}"), by.get(f"baseline/{mode}")
        head = f"- {WHAT[mode]} >= {GOAL_RATIO:g}x baseline: "
        if not (t and b):
            lines.append(
                head + f"default/{mode} and baseline/{mode} not both run: **not measured**."
            )
        elif t.saturation and b.saturation:
            x = t.saturation / b.saturation
            lines.append(
                head + f"{x:.2f}x ({rate(t.saturation)} / {rate(b.saturation)}): "
                f"{verdict(x >= GOAL_RATIO)}."
            )
        else:
            lines.append(head + f"n/a ({rate(t.saturation)} / {rate(b.saturation)}): **NOT met**.")
    for mode in GOAL_RATE:
        t = by.get(f"default/{mode}")
        if t is None:
            continue
        inclusion, reads = at70(t.measured.get(70))
        lines += [
            f"- {WHAT[mode]}: inclusion p50 <= {GOAL_P50_70_S} s and p99 <= {GOAL_P99_70_S} s "
            f"at 70 %: {inclusion}.",
            f"- {WHAT[mode]}: raw eth_call p99 <= {GOAL_RAW_P99_MS:.0f} ms and SDK get p99 <= "
            f"{GOAL_SDK_P99_MS:.0f} ms at 70 %: {reads}.",
        ]
    rss = max(
        (max(o.run.sampler.max_rss.values(), default=0) for o in outcomes if o.run.sampler),
        default=math.inf,
    )
    lines += [
        f"- <= {GOAL_RSS_MB:.0f} MB RSS per geth (max over all runs): max {mb(rss)} MB: "
        f"{verdict(rss / 2**20 <= GOAL_RSS_MB)}.",
        "",
    ]
    return lines
