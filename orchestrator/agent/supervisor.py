"""Keep one geth alive: an explicit state machine with restarts under backoff.

    STOPPED -> STARTING -> RUNNING -> BACKOFF -> STARTING ... -> FATAL
                               \\-> STOPPING -> STOPPED (on SIGTERM/SIGINT)
                               \\-> STOPPING -> STOPPED -> STARTING (a restart asked for)

Every transition is logged and written atomically to the node's versioned
`status.json`, which `poactl status` reads. A geth that exits is restarted after an
exponential backoff with jitter (tenacity); after `max_restarts` quick failures in a
row the supervisor turns FATAL and exits 1. A run longer than `stable_after` seconds
resets the count. While geth runs, the node's care (`SealingSwitch`) is ticked twice a
second; when it asks for a restart (a node stuck behind its peers, `agent.recovery`),
geth is stopped and started again at once: that restart is the care's decision, with
its own backoff, and never counts toward FATAL. One supervisor per node is enforced
with an advisory file lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from orchestrator.agent import status
from orchestrator.agent.status import GETH_ALLOWED, GethState, GethStatus
from orchestrator.boundaries import NodeProcess, Runtime
from orchestrator.errors import NodeError
from orchestrator.geth.proc import runs_with_arg, stop_pid
from orchestrator.logs import log_tail
from orchestrator.retry import Recurring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 30.0


class SealingSwitch(Protocol):
    """What the supervisor tends while geth runs (`orchestrator.agent.recovery.NodeCare`:
    the sealing switch and the node's recovery)."""

    @property
    def sealing(self) -> bool: ...

    def reset(self) -> None: ...

    def tick(self) -> bool: ...

    def restart_wanted(self) -> str | None:
        """Why geth should be restarted now (None: it should not); asked after a tick."""
        ...


@dataclass(frozen=True)
class SupervisedNode:
    name: str
    argv: Sequence[str]
    datadir: Path
    log_file: Path
    status_file: Path
    lock_file: Path | None  # None: the caller (the agent) holds the node's lock
    sealer: SealingSwitch | None = None  # starts sealing once ready
    env: Mapping[str, str] = field(default_factory=dict)  # added to geth's environment


class GethExited(Exception):
    def __init__(self, code: int, uptime: float) -> None:
        self.code = code
        self.uptime = uptime
        super().__init__(f"geth exited with code {code} after {uptime:.1f}s")


class Supervisor:
    def __init__(self, node: SupervisedNode, runtime: Runtime, policy: RestartPolicy) -> None:
        self.node = node
        self.runtime = runtime
        self.policy = policy
        self.state = GethState.STOPPED
        self.restarts = 0
        self.last_exit_code: int | None = None
        self._proc: NodeProcess | None = None
        self._stop = threading.Event()
        self._tick_failures = Recurring(log, node.name, level=logging.ERROR, traceback=True)

    # -- state machine -------------------------------------------------------------
    def _transition(self, new: GethState, message: str = "") -> None:
        if new not in GETH_ALLOWED[self.state]:
            raise RuntimeError(f"illegal transition {self.state} -> {new}")
        log.info("%s: %s -> %s %s", self.node.name, self.state, new, message)
        self.state = new
        status.write(self.node.status_file, self._status(message))

    def _status(self, message: str) -> GethStatus:
        return GethStatus(
            node=self.node.name,
            state=self.state,
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            supervisor_pid=os.getpid(),
            geth_pid=self._proc.pid if self._proc and self._proc.poll() is None else None,
            restarts=self.restarts,
            sealing=bool(self.node.sealer and self.node.sealer.sealing),
            last_exit_code=self.last_exit_code,
            message=message,
        )

    # -- public --------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self, *, handle_signals: bool = True) -> int:
        """Supervise until asked to stop (0) or until giving up (1)."""
        with self._exclusive():
            self._reap_stale_geth()
            for sig in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
                signal.signal(sig, self._on_signal)
            while not self._stop.is_set():
                try:
                    self._run_with_restarts()
                except GethExited as e:
                    self._transition(
                        GethState.FATAL,
                        f"gave up after {self.restarts} restarts: {e}; see {self.node.log_file}",
                    )
                    for line in log_tail(self.node.log_file):
                        log.error("%s geth: %s", self.node.name, line)
                    return 1
            if self.state is not GethState.STOPPED:  # stopped while waiting in BACKOFF
                self._transition(GethState.STOPPING)
                self._transition(GethState.STOPPED, "stopped during backoff")
            return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: received %s", self.node.name, signal.Signals(signum).name)
        self._stop.set()

    # -- internals -----------------------------------------------------------------
    def _run_with_restarts(self) -> None:
        """One series of attempts; returns after a stable run or a requested stop."""
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_restarts + 1),
            wait=wait_exponential_jitter(
                multiplier=self.policy.backoff_initial, max=self.policy.backoff_max, jitter=1.0
            ),
            retry=retry_if_exception_type(GethExited),
            before_sleep=self._enter_backoff,
            sleep=self._sleep_unless_stopped,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if self._stop.is_set():
                    return
                self._run_once()

    def _sleep_unless_stopped(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _enter_backoff(self, retry_state: RetryCallState) -> None:
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.restarts += 1
        self._transition(
            GethState.BACKOFF,
            f"{retry_state.outcome.exception() if retry_state.outcome else ''}; "
            f"restart {retry_state.attempt_number}/{self.policy.max_restarts} in {wait:.1f}s",
        )

    def _run_once(self) -> None:
        """Start geth and watch it; raise GethExited on a quick exit, return otherwise."""
        self._transition(GethState.STARTING)
        try:
            self._proc = self.runtime.start(
                self.node.argv, name=self.node.name, log_file=self.node.log_file, env=self.node.env
            )
        except NodeError as e:
            raise GethExited(-1, 0.0) from e
        started = time.monotonic()
        if self.node.sealer is not None:
            self.node.sealer.reset()
        self._transition(GethState.RUNNING, f"geth pid {self._proc.pid}")
        while (code := self._proc.poll()) is None:
            self._tend_sealing()
            why = self.node.sealer.restart_wanted() if self.node.sealer else None
            if why is not None:
                self._restart(why)
                return
            if self._stop.wait(0.5):
                self._transition(GethState.STOPPING)
                self.last_exit_code = self._proc.stop()
                self._proc = None
                self._transition(GethState.STOPPED, f"geth exited with {self.last_exit_code}")
                return
        uptime = time.monotonic() - started
        self.last_exit_code = code
        log.warning("%s: geth exited with code %s after %.1fs", self.node.name, code, uptime)
        if uptime < self.policy.stable_after:
            raise GethExited(code, uptime)
        self.restarts += 1  # a stable run ended: restart at once with a fresh count

    def _restart(self, why: str) -> None:
        """Stop geth and return: the caller starts it again at once."""
        assert self._proc is not None
        log.warning("%s: restarting geth: %s", self.node.name, why)
        self._transition(GethState.STOPPING, f"restarting: {why}")
        self.last_exit_code = self._proc.stop()
        self._proc = None
        self.restarts += 1
        self._transition(GethState.STOPPED, f"restarting: {why}")

    def _tend_sealing(self) -> None:
        gate = self.node.sealer
        if gate is None:
            return
        try:
            started = gate.tick()
        except Exception as e:  # a surprise from the node must not end its supervision
            self._tick_failures.failed("tending the node failed; will ask again", e)
            return
        self._tick_failures.succeeded()
        if not started:
            return
        log.info("%s: peered and caught up; sealing started", self.node.name)
        status.write(self.node.status_file, self._status("sealing"))

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if self.node.lock_file is None:
            yield
            return
        with node_lock(self.node.lock_file, self.node.name):
            yield

    def _reap_stale_geth(self) -> None:
        """Stop a geth left behind by a supervisor that was killed (it holds the datadir)."""
        previous = status.read(self.node.status_file, GethStatus)
        pid = previous.geth_pid if previous is not None else None
        if pid is None or not runs_with_arg(pid, str(self.node.datadir)):
            return
        log.warning("%s: stopping geth pid %d left by a previous supervisor", self.node.name, pid)
        stop_pid(pid)


@contextmanager
def node_lock(path: Path, name: str) -> Iterator[None]:
    """Hold the node's advisory lock, or raise: one supervisor (agent) per node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise NodeError(
                "another agent already runs this node",
                obj=name,
                hint="use `poactl status` to see it, `poactl down` to stop it",
            ) from e
        yield
