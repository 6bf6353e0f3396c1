"""Disk full: a sealing node's datadir on a small tmpfs, filled up while it runs.

The node's agent is stopped (SIGTERM: it stops geth and releases its lease), its datadir
moved onto a tmpfs with HEADROOM to spare, and the agent started again (as a spare, if
its identity was taken meanwhile). Then a filler file takes the free space but
LEFT_FREE: geth's own guard shuts it down ("Low disk space. Gracefully shutting down
Geth to prevent database corruption"), and every restart does the same. The bank's
balancer must take the node out of rotation, a spare must take its identity if it held
one, and nothing else may notice. Afterwards the filler goes, the node is restarted if
its agent gave up, the data goes back to disk and the node comes back.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from orchestrator.agent.status import GethState
from orchestrator.balancer.service import Paths, in_rotation
from orchestrator.geth.proc import stop_pid
from orchestrator.local import balancers
from orchestrator.logs import log_tail
from tests.faults.harness import FaultLab, wait
from tests.faults.verdict import Outcome, Trial, judge

# geth shuts itself down when less than --datadir.minfreedisk is free (its default:
# 2 x --cache x --cache.gc%, 512 MiB with the defaults): the disk must have more than
# that to start, and the filler leaves less.
HEADROOM = 640 * 2**20
LEFT_FREE = 64 * 2**20
AGENT_STOP = ((signal.SIGTERM, 40.0), (signal.SIGKILL, 5.0))
GETH_STOP = ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _stop_agent(fl: FaultLab, node: str) -> None:
    """Stop the node's agent, then whatever of the node still runs: an agent that needed
    SIGKILL (its geth slow to stop on a full disk) leaves its geth behind."""
    a = fl.agent(node)
    if a is not None and fl.agent_alive(node):
        stop_pid(a.pid, AGENT_STOP)
    for pid in fl.pids(node):
        stop_pid(pid, GETH_STOP)
    fl.wait_dead(node)


@contextlib.contextmanager
def small_disk(fl: FaultLab, node: str) -> Iterator[Path]:
    """The node's datadir on a tmpfs of its size plus HEADROOM, while the block runs."""
    datadir = fl.where(node).layout.node(node).datadir
    disk = datadir.with_name("datadir.disk")
    _stop_agent(fl, node)
    size = _du(datadir) + HEADROOM
    datadir.rename(disk)
    datadir.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(datadir)],
                       check=True)  # fmt: skip
        subprocess.run(["cp", "-a", f"{disk}/.", str(datadir)], check=True)
        fl.restart(node)
        yield datadir
    finally:
        _stop_agent(fl, node)
        subprocess.run(["cp", "-a", f"{datadir}/.", str(disk)], check=False)
        subprocess.run(["umount", "-l", str(datadir)], check=False)
        shutil.rmtree(datadir, ignore_errors=True)
        disk.rename(datadir)
        fl.restart(node)


def out_of_rotation(fl: FaultLab, member: str, node: str) -> bool:
    home = balancers.service(fl.where(node).layout, member).home
    return (in_rotation(Paths(home).stats) or {}).get(node) is False


def disk_full(fl: FaultLab) -> tuple[Outcome, dict[str, object]]:
    fl.wait_healthy()
    node, _ = fl.sealer(not_leader=True)
    member = fl.agent(node).member if fl.agent(node) else ""
    seen: dict[str, object] = {}
    with small_disk(fl, node) as datadir:
        fl.wait_healthy()
        held = fl.holders().get(node)
        free = shutil.disk_usage(datadir).free
        t = Trial(time.monotonic(), bank=member)
        wall = time.time()
        filler = datadir / "filler"
        subprocess.run(["fallocate", "-l", str(max(0, free - LEFT_FREE)), str(filler)], check=True)
        t.extra["out of rotation s"] = wait(
            lambda: out_of_rotation(fl, member, node), 120, f"{node} out of rotation"
        )
        if held:
            t.extra["identity taken over s"] = wait(
                lambda: any(b.signer == held and b.timestamp > wall for b in fl.checker.blocks()),
                120, f"{held} sealing again elsewhere",
            )  # fmt: skip
        wait(lambda: (g := fl.geth(node)) is None or g.state is not GethState.RUNNING, 120,
             f"{node}'s geth to stop")  # fmt: skip
        g, a = fl.geth(node), fl.agent(node)
        paths = fl.where(node).layout.node(node)
        seen = {"geth": g.state if g else None, "geth message": g.message if g else None,
                "agent": a.state if a else None, "agent message": a.message if a else None,
                "held identity": held, "geth log": log_tail(paths.geth_log, 5)}  # fmt: skip
        filler.unlink()
        t.t_heal = time.monotonic()
        if g and g.state is GethState.FATAL and fl.agent_alive(node):
            _stop_agent(fl, node)  # an agent whose geth gave up: the operator restarts it
        if not fl.agent_alive(node):
            fl.restart(node)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=180)
        t.t_end = time.monotonic()
    return judge(fl, "disk full (tmpfs datadir)", [t], since=t.t_fault), seen
