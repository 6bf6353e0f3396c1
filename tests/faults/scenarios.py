"""The fault scenarios of issue 18, each a function of a running fault lab and a trial
count, returning its `Outcome` (the tests assert the goals; `scripts.bench.faults`
tables the figures). Between trials each waits until the consortium is whole again:
every identity sealing, every node at the head.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import statistics
import time
from collections.abc import Iterator, Sequence

import requests

from orchestrator.agent.status import AgentState, GethState
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


def freeze(
    fl: FaultLab, trials: int, *, seconds: Sequence[float], stall_chain: bool = False
) -> Outcome:
    """SIGSTOP of a sealing node's agent and geth for `seconds` (cycled through; past its
    lease: a VM paused or live-migrated), then SIGCONT. With `stall_chain`, a sealing node of the
    other bank is frozen too, so fewer signers than Clique needs remain until the
    spares take over. `back at head s`: from the resume to the frozen node at the head."""
    since = time.monotonic()
    done = []
    for i in range(trials):
        length = seconds[i % len(seconds)]
        fl.wait_healthy()
        node, _ = fl.sealer(not_leader=True)
        member = fl.agent(node).member if fl.agent(node) else ""
        frozen = [node]
        if stall_chain:
            other = next(m for m in fl.spec.members() if m != member)
            frozen.append(fl.sealer(other, not_leader=True)[0])
        pids = [p for n in frozen for p in fl.freeze(n)]
        t = Trial(time.monotonic(), bank=member)
        t.stall_s = fl.stalled_since(t.t_fault, timeout=min(length, 20)) if stall_chain else None
        remaining = length - (time.monotonic() - t.t_fault)
        time.sleep(max(0.0, remaining))  # the freeze itself: a fixed length, the fault
        t.t_heal = fl.thaw(pids)
        t.resume_s = fl.first_block_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.extra["back at head s"] = t.at_head_s
        t.t_end = time.monotonic()
        done.append(t)
    span = f"{min(seconds):.0f}-{max(seconds):.0f}" if len(seconds) > 1 else f"{seconds[0]:.0f}"
    label = f"freeze {span} s" + (" (chain stalled)" if stall_chain else "")
    return judge(fl, label, done, since=since)


def partition(
    fl: FaultLab, trials: int, *, seconds: float, label: str,
    cut: str = "banks", side: list[str] | None = None,
) -> Outcome:  # fmt: skip
    """A network partition for `seconds`, then healed:

    * `banks`: the banks in `side` (default: the first) from all the others, at the router;
    * `node`: a sealing node from every other node (it still reaches its store, so it
      keeps its identity: 3 signers of 4 on the other side);
    * `bank`: a sealing node from the other hosts of its own bank (its bank's balancer
      cannot reach it; it still dials the other bank's nodes)."""
    since = time.monotonic()
    done = []
    for _ in range(trials):
        fl.wait_healthy()
        bank = None
        if cut == "banks":
            cut_side = side or fl.spec.members()[:1]
            others = [b.member for b in fl.lab.plan.banks if b.member not in cut_side]
            t = Trial(time.monotonic())
            for a in cut_side:
                for b in others:
                    fl.lab.cut_banks(a, b)
        else:
            node, _ = fl.sealer(not_leader=True)
            bank = fl.agent(node).member if fl.agent(node) else None
            t = Trial(time.monotonic(), bank=bank)
            if cut == "node":
                fl.lab.isolate(node)
            else:
                fl.lab.cut_from_bank(node)
        t.stall_s = fl.stalled_since(t.t_fault, timeout=seconds)
        time.sleep(max(0.0, seconds - (time.monotonic() - t.t_fault)))  # the partition
        fl.lab.heal()
        t.t_heal = time.monotonic()
        t.resume_s = fl.first_block_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.t_end = time.monotonic()
        done.append(t)
    return judge(fl, label, done, since=since)


def wan(fl: FaultLab, *, latency_ms: int, rate_kb: int | None, seconds: float) -> Outcome:
    """Latency (each way) and a bandwidth cap on every link between banks for `seconds`:
    the block period (between the first sightings of consecutive canonical blocks) and
    the inclusion latency (send to receipt) under WAN conditions."""
    fl.wait_healthy()
    since = time.monotonic()
    fl.lab.wan.slow(latency_ms=latency_ms, rate_kb=rate_kb)
    t = Trial(since)
    try:
        time.sleep(seconds)  # the window measured
    finally:
        fl.lab.wan.reset()
    t.t_heal = t.t_end = time.monotonic()
    reference = fl.nodes()[0][1].name
    chain = fl.checker.canonical(reference)
    blocks = {b.hash: b for b in fl.checker.blocks()}
    seen = sorted(blocks[h].first_seen for h in chain.values()
                  if h in blocks and since + 5 <= blocks[h].first_seen <= t.t_end)  # fmt: skip
    periods = [b - a for a, b in itertools.pairwise(seen)]
    if periods:
        t.extra["block period s"] = statistics.median(periods)
        t.extra["block period p90 s"] = sorted(periods)[int(0.9 * (len(periods) - 1))]
    acks = [a for a in (fl.load.acks if fl.load else []) if since + 5 <= a.sent <= t.t_end]
    if acks:
        t.extra["inclusion s"] = statistics.median(a.included - a.sent for a in acks)
    cap = f", {rate_kb} KB/s" if rate_kb else ""
    return judge(fl, f"WAN {latency_ms} ms each way{cap}", [t], since=since)


def store_unreachable(fl: FaultLab, trials: int, *, seconds: float) -> Outcome:
    """The first bank's store (its Azurite host) drops every packet for `seconds`,
    longer than a lease: its holders fence, the chain stalls (2 signers of 4 left), and
    sealing resumes by itself once the store answers again."""
    member = fl.spec.members()[0]
    since = time.monotonic()
    done = []
    for _ in range(trials):
        fl.wait_healthy()
        t = Trial(time.monotonic(), bank=member)
        fl.lab.isolate(f"{member}-st", keep_store=False)
        t.stall_s = fl.stalled_since(t.t_fault, timeout=seconds)
        time.sleep(max(0.0, seconds - (time.monotonic() - t.t_fault)))  # the outage
        fl.lab.heal()
        t.t_heal = time.monotonic()
        t.resume_s = fl.first_block_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
        t.t_end = time.monotonic()
        done.append(t)
    return judge(fl, f"store unreachable {seconds:.0f} s", done, since=since)


def crash_loop(fl: FaultLab) -> tuple[Outcome, dict[str, object]]:
    """geth of a sealing node cannot start again (its p2p port taken by another
    process): the supervisor backs off, then gives up (FATAL). Returns the outcome and
    what the node's records and its bank's monitor said."""
    fl.wait_healthy()
    node, _ = fl.sealer(not_leader=True)
    c = fl.where(node)
    spec = c.load().node(node)
    host = fl.lab.plan.host(node)
    t = Trial(time.monotonic(), bank=spec.member)
    seen: dict[str, object] = {}
    with port_taken_from(fl, node, host.ns, host.address, spec.p2p_port):
        wait(lambda: (g := fl.geth(node)) is not None and g.state is GethState.FATAL,
             RECOVER_TIMEOUT, f"{node}'s geth supervision to give up (FATAL)")  # fmt: skip
        t.extra["to FATAL s"] = time.monotonic() - t.t_fault
        wait(lambda: (a := fl.agent(node)) is not None and a.state is AgentState.FATAL,
             RECOVER_TIMEOUT, f"{node}'s agent to give up (FATAL)")  # fmt: skip
        g, a = fl.geth(node), fl.agent(node)
        seen = {"geth": g.state if g else None, "restarts": g.restarts if g else None,
                "geth message": g.message if g else None,
                "agent": a.state if a else None, "agent message": a.message if a else None,
                "monitor": monitor_view_of(fl, spec.member, node, until="FATAL")}  # fmt: skip
    fl.restart(node)  # what the operator does once the cause is gone
    t.t_heal = time.monotonic()
    t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=RECOVER_TIMEOUT)
    t.t_end = time.monotonic()
    return judge(fl, "geth crash loop", [t], since=t.t_fault), seen


def monitor_view_of(
    fl: FaultLab, member: str, node: str, *, until: str | None = None, timeout: float = 15.0
) -> object:
    """What the bank's monitor's JSON API says of `node` (None if it does not answer);
    with `until`, asked again (up to `timeout`) until its state is that: the agent's last
    heartbeat reaches the monitor a moment after its own records."""
    c = fl.where(node)
    url = f"http://{fl.lab.plan.bank(member).balancer.address}:{c.load().monitor_port(member)}"
    deadline = time.monotonic() + timeout
    while True:
        with netns.inside(fl.lab.plan.bank(member).app.ns):
            try:
                state = requests.get(url + "/api/state", timeout=5).json()
            except (requests.RequestException, ValueError):
                state = None
        view = [n for n in (state or {}).get("nodes", []) if n.get("name") == node]
        if (
            until is None
            or any(n.get("state") == until for n in view)
            or (time.monotonic() >= deadline)
        ):
            return view if state is not None else None
        time.sleep(0.5)


def _gap(fl: FaultLab, since: float) -> float | None:
    """The longest time without a new block since `since`, if longer than a stall."""
    times = sorted(b.first_seen for b in fl.checker.blocks() if b.first_seen >= since)
    gaps = [b - a for a, b in zip([since, *times], times, strict=False)]
    longest = max(gaps, default=0.0)
    return longest if longest >= 3 * fl.period else None


@contextlib.contextmanager
def port_taken_from(fl: FaultLab, node: str, ns: str, address: str, port: int) -> Iterator[None]:
    """Kill `node`'s geth and hold its p2p port (inside `ns`) before it restarts, so every
    restart exits at once: a crash loop."""
    deadline = time.monotonic() + 30
    while True:
        g = fl.geth(node)
        if g is not None and g.geth_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(g.geth_pid, signal.SIGKILL)
        try:
            with netns.inside(ns):
                s = socket.create_server((address, port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield
    finally:
        s.close()
