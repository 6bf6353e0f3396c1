"""The supervisor's state machine: the transition table, and a real restart series.

The runtime below is a real (tiny) implementation of orchestrator.runtime.Runtime: it
starts the node's argv as an ordinary child process, here a Python one-liner.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from orchestrator.errors import NodeError
from orchestrator.runtime.process import LocalProcess, ProcessRuntime
from orchestrator.supervisor import (
    ALLOWED,
    RestartPolicy,
    State,
    SupervisedNode,
    Supervisor,
)

EXIT_3 = [sys.executable, "-c", "import sys; print('booting', flush=True); sys.exit(3)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]
FAST = RestartPolicy(max_restarts=2, backoff_initial=0.01, backoff_max=0.05, stable_after=60)


# -- the transition table -------------------------------------------------------------


def test_every_state_has_a_row() -> None:
    assert set(ALLOWED) == set(State)
    for targets in ALLOWED.values():
        assert targets <= set(State)


def test_fatal_is_terminal() -> None:
    assert ALLOWED[State.FATAL] == frozenset()


def test_stopping_only_goes_to_stopped() -> None:
    assert ALLOWED[State.STOPPING] == frozenset({State.STOPPED})


def test_stopped_only_goes_to_starting() -> None:
    assert ALLOWED[State.STOPPED] == frozenset({State.STARTING})


def test_no_state_skips_starting_to_reach_running() -> None:
    assert [s for s, targets in ALLOWED.items() if State.RUNNING in targets] == [State.STARTING]


def test_every_state_but_fatal_and_stopped_can_reach_fatal_or_stop() -> None:
    for state in (State.STARTING, State.RUNNING, State.BACKOFF):
        assert {State.FATAL, State.STOPPING} <= ALLOWED[state]


# -- a real Runtime -------------------------------------------------------------------


class ChildRuntime(ProcessRuntime):
    """The real process runtime, counting what it started."""

    def __init__(self) -> None:
        self.started: list[LocalProcess] = []

    def start(self, argv: Sequence[str], *, name: str, log_file: Path) -> LocalProcess:
        proc = super().start(argv, name=name, log_file=log_file)
        self.started.append(proc)
        return proc


class FailingRuntime:
    def start(self, argv: Sequence[str], *, name: str, log_file: Path) -> LocalProcess:
        raise NodeError("cannot start geth", obj=name)


@pytest.fixture(autouse=True)
def restore_signal_handlers() -> Iterator[None]:
    """Supervisor.run installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _node(tmp_path: Path, argv: Sequence[str]) -> SupervisedNode:
    return SupervisedNode(
        name="bank-a-1",
        argv=list(argv),
        datadir=tmp_path / "datadir",
        log_file=tmp_path / "geth.log",
        status_file=tmp_path / "status.json",
        lock_file=tmp_path / "supervisor.lock",
    )


def _status(tmp_path: Path) -> dict[str, object]:
    data = json.loads((tmp_path / "status.json").read_text())
    assert isinstance(data, dict)
    return data


def _transitions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    pairs = []
    for record in caplog.records:
        if record.name == "orchestrator.supervisor" and " -> " in record.getMessage():
            _, rest = record.getMessage().split(": ", 1)
            before, after = rest.split(" -> ", 1)
            pairs.append((before, after.split()[0]))
    return pairs


def test_quick_exits_end_in_fatal_after_max_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.supervisor")
    runtime = ChildRuntime()
    supervisor = Supervisor(_node(tmp_path, EXIT_3), runtime, FAST)

    assert supervisor.run() == 1

    status = _status(tmp_path)
    assert status["state"] == "FATAL"
    assert status["restarts"] == 2
    assert status["last_exit_code"] == 3
    assert status["node"] == "bank-a-1"
    assert status["version"] == 1
    assert status["geth_pid"] is None
    assert "gave up after 2 restarts" in str(status["message"])
    assert str(tmp_path / "geth.log") in str(status["message"])
    assert supervisor.state is State.FATAL

    assert len(runtime.started) == 3  # the first start plus max_restarts restarts
    assert all(p.poll() == 3 for p in runtime.started)
    assert (tmp_path / "geth.log").read_text().count("booting") == 3

    run_once = [("STARTING", "RUNNING"), ("RUNNING", "BACKOFF"), ("BACKOFF", "STARTING")]
    assert _transitions(caplog) == [
        ("STOPPED", "STARTING"),
        *run_once,
        *run_once,
        ("STARTING", "RUNNING"),
        ("RUNNING", "FATAL"),
    ]
    for before, after in _transitions(caplog):
        assert State(after) in ALLOWED[State(before)]


def test_a_runtime_that_cannot_start_also_ends_in_fatal(tmp_path: Path) -> None:
    supervisor = Supervisor(_node(tmp_path, EXIT_3), FailingRuntime(), FAST)
    assert supervisor.run() == 1
    status = _status(tmp_path)
    assert status["state"] == "FATAL"
    assert status["restarts"] == 2
    assert status["last_exit_code"] is None  # nothing ever ran


def test_stop_request_stops_the_child_and_ends_stopped(tmp_path: Path) -> None:
    runtime = ChildRuntime()
    supervisor = Supervisor(_node(tmp_path, SLEEPS), runtime, FAST)
    stopper = threading.Timer(0.5, supervisor.request_stop)
    stopper.start()
    try:
        code = supervisor.run()
    finally:
        stopper.cancel()
    assert code == 0
    status = _status(tmp_path)
    assert status["state"] == "STOPPED"
    assert status["restarts"] == 0
    # The runtime asks politely first: SIGINT is geth's clean-shutdown signal.
    assert status["last_exit_code"] == -signal.SIGINT
    assert len(runtime.started) == 1
    assert runtime.started[0].poll() is not None  # the child is gone


def test_illegal_transition_is_refused(tmp_path: Path) -> None:
    supervisor = Supervisor(_node(tmp_path, EXIT_3), ChildRuntime(), FAST)
    with pytest.raises(RuntimeError, match="illegal transition STOPPED -> RUNNING"):
        supervisor._transition(State.RUNNING)
    assert supervisor.state is State.STOPPED
    assert not (tmp_path / "status.json").exists()


def test_second_supervisor_for_the_same_node_is_refused(tmp_path: Path) -> None:
    first = Supervisor(_node(tmp_path, EXIT_3), ChildRuntime(), FAST)
    second = Supervisor(_node(tmp_path, EXIT_3), ChildRuntime(), FAST)
    with first._exclusive(), pytest.raises(NodeError, match="another supervisor"):
        second.run()
    assert not (tmp_path / "status.json").exists()


def test_stop_request_during_backoff_ends_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.supervisor")
    slow = RestartPolicy(max_restarts=5, backoff_initial=5, backoff_max=5, stable_after=60)
    runtime = ChildRuntime()
    supervisor = Supervisor(_node(tmp_path, EXIT_3), runtime, slow)
    stopper = threading.Timer(1.0, supervisor.request_stop)  # the child exited; now backing off
    stopper.start()
    t0 = time.monotonic()
    try:
        code = supervisor.run()
    finally:
        stopper.cancel()
    assert time.monotonic() - t0 < 4.5  # the stop cut the 5 s backoff short
    assert code == 0
    assert supervisor.state is State.STOPPED
    status = _status(tmp_path)
    assert status["state"] == "STOPPED"
    assert status["geth_pid"] is None
    assert status["last_exit_code"] == 3
    assert len(runtime.started) == 1  # no restart after the stop
    transitions = _transitions(caplog)
    assert transitions[-3:] == [
        ("RUNNING", "BACKOFF"),
        ("BACKOFF", "STOPPING"),
        ("STOPPING", "STOPPED"),
    ]
    for before, after in transitions:
        assert State(after) in ALLOWED[State(before)]


def test_a_node_without_a_sealing_gate_reports_not_sealing(tmp_path: Path) -> None:
    node = _node(tmp_path, SLEEPS)
    assert node.sealing_gate is None  # the default: rpc nodes, and these fake runs
    supervisor = Supervisor(node, ChildRuntime(), FAST)
    stopper = threading.Timer(0.5, supervisor.request_stop)
    stopper.start()
    try:
        assert supervisor.run() == 0
    finally:
        stopper.cancel()
    assert _status(tmp_path)["sealing"] is False
