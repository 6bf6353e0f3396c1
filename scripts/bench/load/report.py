"""This benchmark's section of docs/benchmarks.md: the tables of each configuration's
steps, reads, RSS and gas, the tuned / baseline ratio, and the goals of issue 5."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics

from ..common import geth_version, machine, pct
from .run import BISECTIONS, Outcome, Run
from .signing import FAST_SIGNING
from .step import ms, sec
from .traffic import POLL_S, READ_RATE, TICK_S

BEGIN, END = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"
GOAL_WRITES = 1000.0
GOAL_P99_70_S = 2.5
GOAL_READ_P99_MS = 10.0
GOAL_RSS_MB = 300.0


def fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} (x{v})" for k, v in errors.items()) or "none"


def mb(n: float) -> str:
    return f"{n / 2**20:.0f}"


def given(r: Run) -> str:
    """What the tuning section gives every geth: its flags and its environment."""
    tuning = r.consortium.settings.tuning
    env = "".join(f" and {k}={v} in its environment" for k, v in tuning.environment().items())
    return f"`{' '.join(tuning.flags())}`{env}"


def section(outcomes: list[Outcome], args: argparse.Namespace, command: str) -> str:
    lines = [
        BEGIN,
        "## Credit-record load: open-loop writes, reads under load, RSS, gas",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}; "
        "default consortium (2 banks x (2 validators + 1 spare) = 6 agents / 6 geth nodes, "
        "4 signers, period 2 s, local store and vaults), each configuration on a new state "
        f"dir through the real CLI. Command: `{command}`.",
        "",
        "Load: `report` transactions of the CreditRegistry, each a new tradeline of a new "
        "subject, signed locally with bank-a's and bank-b's transaction keys (alternating) "
        "and sent raw to each bank's own first node; all transactions of a step are signed "
        "before it ("
        + (
            "coincurve/libsecp256k1 + rlp, byte-identical to eth_account"
            if FAST_SIGNING
            else "eth_account; coincurve not installed"
        )
        + "), then sent "
        "open loop (transaction i due at i / rate) in one JSON-RPC batch per bank every "
        f"{TICK_S * 1000:.0f} ms. Latency: send -> the transaction seen in a block on the "
        f"submitting bank's node (head polled every {POLL_S * 1000:.0f} ms). A step keeps up "
        "when every write is in a block within 3 periods of the last send and the p99 of its "
        "second half is <= 3 periods; the rate grows x1.5 from "
        f"{args.start_rate:g}/s, then {BISECTIONS} bisection steps; saturation = the highest "
        "rate that kept up. Reads: Bank B's SDK `CreditClient.get` (block number + "
        "`tradelinesOf`, 3 tradelines from both banks) from its own node at "
        f"{READ_RATE:.0f}/s in a separate process.",
        "",
    ]
    for o in outcomes:
        r = o.run
        what = (
            f"gas_limit {r.gas_limit:,} in the consortium file (genesis + --miner.gaslimit), "
            + (
                f"`tuning: {json.dumps(r.tuning)}` (every geth gets {given(r)})"
                if r.tuning
                else "no `tuning` section (geth's default cache, memory limit, recommit and txpool)"
            )
        )
        if r.name == "baseline":
            what += ": geth's private-network documentation settings"
        lines += [
            f"### {r.name}: {what}",
            "",
            f"`poactl up` {r.up_seconds:.1f} s; signers held by "
            + ", ".join(sorted(r.signers))
            + f"; writes sent to {', '.join(f'{ln.bank} -> {ln.node}' for ln in r.lanes)}; "
            f"reads from {r.reader_node}.",
            "",
            "| step | rate/s | sent | send rate/s | in time | p50 | p99 | p99 2nd half | max | "
            "blocks (step + drain) | txs/block mean/max | gas fill max | CPU machine | "
            "CPU geths (1 core=100) | CPU generator | txpool pend/queued at end | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for st in r.steps:
            pool = ", ".join(f"{n} {v}" for n, v in st.txpool.items())
            verdict = "kept up" if st.kept_up else f"fell behind: {st.why}"
            lines.append(
                f"| {st.label} | {st.rate:g} | {st.sent} | {st.send_rate:.1f} | "
                f"{st.included - st.late}/{st.sent} | {sec(st.p50)} | {sec(st.p99)} | "
                f"{sec(st.p99_second_half)} | {sec(st.max_latency)} | {st.blocks} | "
                f"{st.mean_txs_block:.0f}/{st.max_txs_block} | {st.max_gas_fill:.0%} | "
                f"{st.cpu_machine:.0f} % | {st.cpu_geths:.0f} % | {st.cpu_generator:.0f} % | "
                f"{pool} | {verdict} |"
            )
        if o.error:
            lines += ["", f"**This configuration's run stopped early: {o.error}**"]
        lines += ["", f"Saturation: **{o.saturation if o.saturation else 'not found'} writes/s**."]
        if r.gas:
            per_block = r.gas_limit // round(statistics.mean(r.gas))
            lines.append(
                f"The block gas limit alone caps this configuration at {per_block} writes per "
                f"block = {per_block / r.period:.0f} writes/s "
                f"({r.gas_limit:,} / {statistics.mean(r.gas):,.0f} gas per write)."
            )
        if o.measured:
            lines += ["", "| load | rate/s | write p50 | write p99 | SDK get p50 | get p99 | "
                      "get max | raw eth_call p50 | eth_call p99 | read errors |",
                      "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
            lines.append(
                f"| idle (no writes) | 0 | - | - | {ms(pct(r.idle_reads, 50))} | "
                f"{ms(pct(r.idle_reads, 99))} | {ms(max(r.idle_reads, default=math.nan))} | "
                f"{ms(pct(r.idle_raw, 50))} | {ms(pct(r.idle_raw, 99))} | "
                f"{fmt_errors(r.idle_read_errors)} |"
            )
            for share, st in o.measured.items():
                lines.append(
                    f"| {share} % of saturation | {st.rate:g} | {sec(st.p50)} | {sec(st.p99)} | "
                    f"{ms(pct(st.reads, 50))} | {ms(pct(st.reads, 99))} | "
                    f"{ms(max(st.reads, default=math.nan))} | {ms(pct(st.raw_reads, 50))} | "
                    f"{ms(pct(st.raw_reads, 99))} | {fmt_errors(st.read_errors)} |"
                )
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
                f"Gas per write (receipts of {len(r.gas)} sampled writes): mean "
                f"{statistics.mean(r.gas):,.0f}, min {min(r.gas):,}, max {max(r.gas):,}; "
                f"{r.receipt_failures} reverted; gas limit per transaction "
                f"{r.lanes[0].signer.gas:,}. Reorgs seen by the observers: "
                f"{sum(o.reorgs for o in r.observers.values())}."
                if r.gas
                else "No receipts sampled."
            ),
            "",
        ]
    by = {o.run.name: o for o in outcomes}
    if "tuned" in by and "baseline" in by:
        a, b = by["tuned"].saturation, by["baseline"].saturation
        ratio = f"{a / b:.2f}" if a and b else "n/a"
        lines += [
            f"Ratio tuned / baseline (geth private-network settings) saturation: **{ratio}** "
            f"({a} / {b} writes/s).",
            "",
        ]
    lines += goals(outcomes)
    lines.append(END)
    return "\n".join(lines)


def goals(outcomes: list[Outcome]) -> list[str]:
    main = next((o for o in outcomes if o.run.name == "tuned"), outcomes[0])
    r = main.run
    sat = main.saturation or 0.0
    st70 = main.measured.get(70)
    reads = [x for st in main.measured.values() for x in st.reads]
    rss = max(r.sampler.max_rss.values()) if r.sampler else math.inf

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**NOT met**"

    return [
        f"Goals (issue 5), {r.name} configuration:",
        "",
        f"- >= {GOAL_WRITES:,.0f} writes/s sustained: saturation {sat:g} writes/s: "
        f"{verdict(sat >= GOAL_WRITES)}.",
        f"- p99 <= {GOAL_P99_70_S} s at 70 %: "
        + (f"{sec(st70.p99)} at {st70.rate:g}/s: {verdict(st70.p99 <= GOAL_P99_70_S)}."
           if st70 else "not measured: **NOT met**."),
        f"- reads p99 <= {GOAL_READ_P99_MS:.0f} ms under write load (50/70/90 % together): "
        + (f"{ms(pct(reads, 99))}: {verdict(pct(reads, 99) * 1000 <= GOAL_READ_P99_MS)}."
           if reads else "not measured: **NOT met**."),
        f"- <= {GOAL_RSS_MB:.0f} MB RSS per node: max {mb(rss)} MB: "
        f"{verdict(rss / 2**20 <= GOAL_RSS_MB)}.",
        "",
    ]  # fmt: skip
