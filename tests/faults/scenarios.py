"""The fault scenarios of issue 18, each a function of a running fault lab and a trial
count, returning its `Outcome` (the tests assert the goals; `scripts.bench.faults`
tables the figures). Between trials each waits until the consortium is whole again:
every identity sealing, every node at the head.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

from orchestrator.lab import netns
from tests.faults.harness import FaultLab, wait
from tests.faults.verdict import Outcome, Trial, judge

RECOVER_TIMEOUT = 180.0


def kill9(fl: FaultLab, trials: int) -> Outcome:
    """kill -9 of a sealing node's agent and geth (a VM that dies): the bank's spare takes
    the identity over once the lease expires; the killed agent comes back as a spare."""
    since = time.monotonic()
    done = []
    for _ in range(trials):
        fl.wait_healthy()
        node, signer = fl.sealer()
        wall = time.time()
        t = Trial(fl.kill9(node), bank=fl.agent(node).member if fl.agent(node) else None)
        t.extra["failover s"] = wait(
            lambda s=signer, w=wall: any(  # type: ignore[misc]
                b.signer == s and b.timestamp > w + 1 for b in fl.checker.blocks()
            ), RECOVER_TIMEOUT, f"{signer} to seal again from another node",
        )  # fmt: skip
        t.stall_s = _gap(fl, t.t_fault)
        fl.restart(node)
        t.t_heal = time.monotonic()
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.t_end = time.monotonic()
        done.append(t)
    return judge(fl, "kill -9 of a sealing node", done, since=since)


def freeze(fl: FaultLab, trials: int, *, seconds: float, stall_chain: bool = False) -> Outcome:
    """SIGSTOP of a sealing node's agent and geth for `seconds` (past its lease: a VM
    paused or live-migrated), then SIGCONT. With `stall_chain`, a sealing node of the
    other bank is frozen too, so fewer signers than Clique needs remain until the
    spares take over. `back at head s`: from the resume to the frozen node at the head."""
    since = time.monotonic()
    done = []
    for _ in range(trials):
        fl.wait_healthy()
        node, signer = fl.sealer(not_leader=True)
        member = fl.agent(node).member if fl.agent(node) else ""
        frozen = [node]
        if stall_chain:
            other = [m for m in fl.spec.members() if m != member][0]
            frozen.append(fl.sealer(other, not_leader=True)[0])
        pids = [p for n in frozen for p in fl.freeze(n)]
        t = Trial(time.monotonic(), bank=member)
        t.stall_s = fl.stalled_since(t.t_fault, timeout=min(seconds, 20)) if stall_chain else None
        remaining = seconds - (time.monotonic() - t.t_fault)
        time.sleep(max(0.0, remaining))  # the freeze itself: a fixed length, the fault
        t.t_heal = fl.thaw(pids)
        t.resume_s = fl.first_block_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.extra["back at head s"] = t.at_head_s
        t.t_end = time.monotonic()
        done.append(t)
    label = f"freeze {seconds:.0f} s" + (" (chain stalled)" if stall_chain else "")
    return judge(fl, label, done, since=since)


def _gap(fl: FaultLab, since: float) -> float | None:
    """The longest time without a new block since `since`, if longer than a stall."""
    times = sorted(b.first_seen for b in fl.checker.blocks() if b.first_seen >= since)
    gaps = [b - a for a, b in zip([since, *times], times, strict=False)]
    longest = max(gaps, default=0.0)
    return longest if longest >= 3 * fl.period else None


@contextlib.contextmanager
def port_taken(ns: str, address: str, port: int) -> Iterator[None]:
    """A listener on `address:port` inside `ns` (so a geth that restarts there cannot
    bind it and exits at once: a crash loop)."""
    with netns.inside(ns):
        s = socket.create_server((address, port))
    try:
        yield
    finally:
        s.close()
