"""The agents of a local consortium as processes on this machine: whether one runs (it
holds its node's lock), starting one detached (`poactl agent`, as a VM's boot would),
and stopping agents and any geth a killed agent left behind.
"""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from orchestrator.agent import status
from orchestrator.agent.status import AgentStatus, GethStatus
from orchestrator.geth.proc import runs_with_arg, stop_pid
from orchestrator.local.layout import StateLayout

AGENT_COMMAND = "agent"
# The agent gets SIGTERM, stops geth itself (geth's own SIGINT/TERM/KILL sequence) and
# releases its leases; only then do we kill the agent.
AGENT_STOP = ((signal.SIGTERM, 40.0), (signal.SIGKILL, 5.0))


def agent_running(layout: StateLayout, name: str) -> bool:
    """Whether an agent holds this node's lock right now."""
    lock = layout.node(name).lock
    if not lock.exists():
        return False
    with lock.open("r") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def spawn_agent(layout: StateLayout, name: str) -> subprocess.Popen[bytes]:
    paths = layout.node(name)
    argv = [
        sys.executable, "-m", "orchestrator.cli", "-v", AGENT_COMMAND,
        "--config", str(paths.agent_config),
    ]  # fmt: skip
    with paths.agent_log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `poactl up`, untouched by its Ctrl-C
        )


def stop_nodes(
    layout: StateLayout, names: Sequence[str], agent_pids: Mapping[str, int] | None = None
) -> list[str]:
    """Stop agents (by the pid we spawned, else the one in agent.json), then any geth
    a killed agent left behind; the nodes stopped."""

    def stop(name: str) -> str | None:
        paths = layout.node(name)
        stopped = False
        record = status.read(paths.agent_status, AgentStatus)
        pid = (agent_pids or {}).get(name, record.pid if record else None)
        if pid is not None and runs_with_arg(pid, str(paths.agent_config)):
            stop_pid(pid, AGENT_STOP)
            stopped = True
        geth = status.read(paths.status, GethStatus)
        geth_pid = geth.geth_pid if geth else None
        if geth_pid is not None and runs_with_arg(geth_pid, str(paths.datadir)):
            stop_pid(geth_pid)
            stopped = True
        return name if stopped else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [n for n in pool.map(stop, names) if n]
