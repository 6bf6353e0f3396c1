"""What a scenario's trials add up to: the figures of docs/reliability.md's table.

Per scenario: acknowledged writes lost (goal 0), heights signed twice by one identity
(goal 0), the deepest reorg of an acknowledged block, time from the fault to a stalled
chain, from healing to the first new block and to every node at one head, and failed
client requests through the balancer (all, and those later than one health interval
after the fault).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from tests.faults.checker import Block, IpcError, ipc_call
from tests.faults.harness import HEALTH_INTERVAL, FaultLab
from tests.faults.load import Ack, Failure

REINCLUDE_TIMEOUT = 60.0  # a reorged write gets this long to be included again


@dataclass
class Trial:
    t_fault: float
    t_heal: float | None = None
    t_end: float = 0.0
    stall_s: float | None = None  # fault -> last block before the chain stalled
    resume_s: float | None = None  # heal -> first new block
    at_head_s: float | None = None  # heal -> every node at one head
    extra: dict[str, float] = field(default_factory=dict)
    bank: str | None = None  # whose clients count as "through the faulty bank's balancer"


@dataclass
class Outcome:
    scenario: str
    trials: list[Trial]
    acks: int
    lost: list[Ack]
    reorged: list[tuple[Ack, int]]  # acknowledged writes whose block was reorged, depth
    signed_twice: dict[tuple[str, int], list[Block]]
    failures: list[Failure]
    failures_late: list[Failure]
    problems: list[str]
    forked: dict[int, list[Block]] = field(default_factory=dict)  # height -> siblings seen

    @property
    def deepest_reorg(self) -> int:
        return max((d for _, d in self.reorged), default=0)

    def row(self) -> dict[str, object]:
        def stat(values: list[float | None]) -> str:
            got = [v for v in values if v is not None]
            if not got:
                return "—"
            return f"{statistics.median(got):.1f} / {max(got):.1f}"

        extra_keys = sorted({k for t in self.trials for k in t.extra})
        return {
            "scenario": self.scenario,
            "trials": len(self.trials),
            "acked writes": self.acks,
            "acked lost": len(self.lost),
            "signed twice": _twice(self.signed_twice, self.equivocations),
            "deepest acked reorg": self.deepest_reorg,
            "forked heights": len(self.forked),
            "fault → stall s": stat([t.stall_s for t in self.trials]),
            "heal → block s": stat([t.resume_s for t in self.trials]),
            "heal → all at head s": stat([t.at_head_s for t in self.trials]),
            "failed requests (late)": f"{len(self.failures)} ({len(self.failures_late)})",
            **{k: stat([t.extra.get(k) for t in self.trials]) for k in extra_keys},
        }

    @property
    def equivocations(self) -> dict[tuple[str, int], list[Block]]:
        """Heights one identity signed twice on the same parent: one holder's two versions
        of its block (FINDINGS-faults #2), not two holders of one key."""
        return {k: v for k, v in self.signed_twice.items() if len({b.parent for b in v}) == 1}

    def assert_safe(self) -> None:
        """The goals every scenario must meet: nothing acknowledged lost, no height signed
        twice, every block's seal checked. Only a known defect of another branch
        (FINDINGS-faults #2, same parent) turns the test into an expected failure."""
        assert not self.lost, f"{self.scenario}: acknowledged writes lost: {self.lost[:5]}"
        assert not self.problems, f"{self.scenario}: blocks that fail the checks: {self.problems}"
        others = {k: v for k, v in self.signed_twice.items() if k not in self.equivocations}
        assert not others, f"{self.scenario}: one identity signed twice: {others}"
        if self.equivocations:
            import pytest

            pytest.xfail(f"FINDINGS-faults #2, one holder signed two versions of a block: "
                         f"{list(self.equivocations)}")  # fmt: skip


def _twice(all_: dict[tuple[str, int], list[Block]], same_parent: dict[object, object]) -> str:
    """How many heights one identity signed twice, and how many of them on one parent."""
    if not all_:
        return "0"
    return f"{len(all_)} ({len(same_parent)} on one parent)"


def _answering(fl: FaultLab, timeout: float = 120.0) -> str:
    """A node whose IPC answers now (a node the scenario just restarted may not yet)."""
    names = [n.name for _, n in fl.nodes()]
    paths = fl.ipc_paths()
    deadline = time.monotonic() + timeout
    while True:
        for name in names:
            try:
                ipc_call(paths[name], "eth_blockNumber", [])
                return name
            except IpcError:
                continue
        if time.monotonic() > deadline:
            raise IpcError(f"no node's IPC answered in {timeout:.0f} s")
        time.sleep(0.5)


def judge(fl: FaultLab, scenario: str, trials: list[Trial], *, since: float) -> Outcome:
    """Once every node is at one head: the acknowledgements made since `since` against
    the final canonical chain, and the checker's whole record."""
    fl.wait_healthy()
    reference = _answering(fl)
    acks = [a for a in (fl.load.acks if fl.load else []) if a.t >= since]
    lost: list[Ack] = []
    reorged: list[tuple[Ack, int]] = []
    deadline = time.monotonic() + REINCLUDE_TIMEOUT
    chain = fl.checker.canonical(reference)
    for ack in acks:
        block_hash = _included(fl, reference, ack.tx, deadline)
        if block_hash is None:
            lost.append(ack)
        elif block_hash != ack.block_hash:
            chain = fl.checker.canonical(reference)
            fork = fl.checker.fork_point(ack.block_hash, chain)
            reorged.append((ack, ack.head - fork if fork is not None else ack.head))
    failures, late = [], []
    for t in trials:
        during = fl.load.failures_since(t.t_fault, t.t_end) if fl.load else []
        mine = [f for f in during if t.bank is None or f.bank == t.bank]
        failures += mine
        late += [f for f in mine if f.t > t.t_fault + HEALTH_INTERVAL]
    return Outcome(
        scenario, trials, len(acks), lost, reorged, fl.checker.signed_twice(since), failures,
        late,
        list(fl.checker.record.problems),
        fl.checker.forked_heights(since),
    )  # fmt: skip


def _included(fl: FaultLab, node: str, tx: str, deadline: float) -> str | None:
    """The canonical block holding `tx` on `node`, waiting until `deadline` for a write
    whose block was reorged away to be included again."""
    path = fl.ipc_paths()[node]
    while True:
        try:
            receipt = ipc_call(path, "eth_getTransactionReceipt", [tx])
        except IpcError:
            receipt = None
        if receipt is not None:
            return str(receipt["blockHash"])
        if time.monotonic() > deadline:
            return None
        time.sleep(1.0)
