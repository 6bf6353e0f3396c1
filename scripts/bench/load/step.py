"""One step's figures (`Step`) and how they are shown: the units and the progress line
printed after each step. Rates are records/s; a transaction carries `k` records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..common import pct


@dataclass
class Step:
    label: str
    rate: float  # records/s
    seconds: float
    k: int = 1  # records per transaction
    sent: int = 0  # transactions
    errors: dict[str, int] = field(default_factory=dict)
    included: int = 0
    late: int = 0  # not in a block within 3 periods of the last send
    never: int = 0  # not in a block within run.DRAIN_MAX_S
    resent: int = 0  # sent again through the bank's other nodes while draining
    p50: float = math.nan
    p99: float = math.nan
    p99_second_half: float = math.nan
    max_latency: float = math.nan
    send_rate: float = math.nan  # records/s
    max_lag: float = 0.0
    blocks: int = 0
    max_txs_block: int = 0
    mean_txs_block: float = 0.0
    max_gas_fill: float = 0.0  # gasUsed / gasLimit, max over the step's blocks
    cpu_machine: float = math.nan  # % of all cores over the sending phase
    cpu_geths: float = math.nan  # % of one core, the six geths together
    cpu_generator: float = math.nan  # % of one core, this process
    txpool: dict[str, str] = field(default_factory=dict)  # node -> pending/queued at end
    reads: list[float] = field(default_factory=list)  # SDK get, seconds
    raw_reads: list[float] = field(default_factory=list)  # raw eth_call of `states`
    read_errors: dict[str, int] = field(default_factory=dict)
    read_accounts: int = -1
    hashes: list[str] = field(default_factory=list)
    kept_up: bool = False
    why: str = ""

    @property
    def records(self) -> int:
        """Records sent (transactions x k)."""
        return self.sent * self.k


def ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1000:.1f} ms"


def sec(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f} s"


def fmt_reads(xs: Sequence[float], raw: Sequence[float]) -> str:
    if not xs:
        return "no reads"
    return (
        f"{len(xs)} SDK gets (block number + eth_getLogs) p50 {ms(pct(xs, 50))}, "
        f"p99 {ms(pct(xs, 99))}, max {ms(max(xs))}; raw eth_call (`states` of its 10 "
        f"tradelines) p50 {ms(pct(raw, 50))}, p99 {ms(pct(raw, 99))}"
    )


def fmt_step(st: Step) -> str:
    errors = ", ".join(f"{k!r} x{v}" for k, v in st.errors.items()) or "none"
    out = (
        f"{st.label} {st.rate:g} records/s for {st.seconds:g} s: sent {st.sent} txs x "
        f"{st.k} = {st.records} records (at {st.send_rate:.1f} records/s, max lag "
        f"{st.max_lag * 1000:.0f} ms, errors {errors}), txs included {st.included}, "
        f"late {st.late}, never {st.never}, resent {st.resent}; "
        f"latency p50 {sec(st.p50)} "
        f"p99 {sec(st.p99)} (2nd half {sec(st.p99_second_half)}) max {sec(st.max_latency)}; "
        f"{st.blocks} blocks, txs/block mean {st.mean_txs_block:.0f} max {st.max_txs_block}, "
        f"max gas fill {st.max_gas_fill:.0%}; CPU machine {st.cpu_machine:.0f} %, "
        f"geths {st.cpu_geths:.0f} %, generator {st.cpu_generator:.0f} % of a core; "
        f"txpool pending/queued {st.txpool}; "
        + ("KEPT UP" if st.kept_up else f"FELL BEHIND ({st.why})")
    )
    if st.reads:
        out += (
            f"; reads ({st.read_accounts} accounts) {fmt_reads(st.reads, st.raw_reads)}, "
            f"errors {st.read_errors or 'none'}"
        )
    return out
