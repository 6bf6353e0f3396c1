"""The supervisor's state machine: the transition table, and a real restart series.

The runtime below is a real (tiny) implementation of orchestrator.runtime.Runtime: it
starts the node's argv as an ordinary child process, here a Python one-liner.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from orchestrator.agent.status import GETH_ALLOWED, GethState
from orchestrator.agent.supervisor import (
    RestartPolicy,
    SupervisedNode,
    Supervisor,
    node_lock,
)
from orchestrator.errors import NodeError
from orchestrator.runtime.process import LocalProcess, ProcessRuntime

EXIT_3 = [sys.executable, "-c", "import sys; print('booting', flush=True); sys.exit(3)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]
FAST = RestartPolicy(max_restarts=2, backoff_initial=0.01, backoff_max=0.05, stable_after=60)


# -- the transition table -------------------------------------------------------------


def test_every_state_has_a_row() -> None:
    assert set(GETH_ALLOWED) == set(GethState)
    for targets in GETH_ALLOWED.values():
        assert targets <= set(GethState)


def test_fatal_is_terminal() -> None:
    assert GETH_ALLOWED[GethState.FATAL] == frozenset()


def test_stopping_only_goes_to_stopped() -> None:
    assert GETH_ALLOWED[GethState.STOPPING] == frozenset({GethState.STOPPED})


def test_stopped_only_goes_to_starting() -> None:
    assert GETH_ALLOWED[GethState.STOPPED] == frozenset({GethState.STARTING})


def test_no_state_skips_starting_to_reach_running() -> None:
    into_running = [s for s, targets in GETH_ALLOWED.items() if GethState.RUNNING in targets]
    assert into_running == [GethState.STARTING]


def test_every_state_but_fatal_and_stopped_can_reach_fatal_or_stop() -> None:
    for state in (GethState.STARTING, GethState.RUNNING, GethState.BACKOFF):
        assert {GethState.FATAL, GethState.STOPPING} <= GETH_ALLOWED[state]


# -- a real Runtime -------------------------------------------------------------------


class ChildRuntime(ProcessRuntime):
    """The real process runtime, counting what it started."""

    def __init__(self) -> None:
        self.started: list[LocalProcess] = []

    def start(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> LocalProcess:
        proc = super().start(argv, name=name, log_file=log_file, env=env)
        self.started.append(proc)
        return proc


class FailingRuntime:
    def start(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> LocalProcess:
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
        if record.name == "orchestrator.agent.supervisor" and " -> " in record.getMessage():
            _, rest = record.getMessage().split(": ", 1)
            before, after = rest.split(" -> ", 1)
            pairs.append((before, after.split()[0]))
    return pairs


def test_quick_exits_end_in_fatal_after_max_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.agent.supervisor")
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
    assert supervisor.state is GethState.FATAL

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
        assert GethState(after) in GETH_ALLOWED[GethState(before)]


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
        supervisor._transition(GethState.RUNNING)
    assert supervisor.state is GethState.STOPPED
    assert not (tmp_path / "status.json").exists()


def test_a_second_node_lock_on_the_same_file_is_refused_naming_the_node(tmp_path: Path) -> None:
    lock = tmp_path / "agent.lock"
    with node_lock(lock, "bank-a-1"):
        with pytest.raises(NodeError) as caught, node_lock(lock, "bank-a-1"):
            pytest.fail("two holders of one node's lock")
        assert caught.value.obj == "bank-a-1"
        assert str(caught.value).startswith("bank-a-1: another agent already runs this node")
        assert "poactl status" in str(caught.value)
    with node_lock(lock, "bank-a-1"):  # released on leaving the block: free again
        pass


def test_a_supervisor_with_a_lock_file_is_refused_while_the_node_is_locked(
    tmp_path: Path,
) -> None:
    runtime = ChildRuntime()
    supervisor = Supervisor(_node(tmp_path, EXIT_3), runtime, FAST)
    with (
        node_lock(tmp_path / "supervisor.lock", "bank-a-1"),
        pytest.raises(NodeError, match="another agent already runs this node"),
    ):
        supervisor.run()
    assert runtime.started == []
    assert not (tmp_path / "status.json").exists()


def test_a_supervisor_without_a_lock_file_runs_under_its_agents_lock(tmp_path: Path) -> None:
    """The agent holds the node's lock itself and passes lock_file=None."""
    node = dataclasses.replace(_node(tmp_path, SLEEPS), lock_file=None)
    runtime = ChildRuntime()
    supervisor = Supervisor(node, runtime, FAST)
    stopper = threading.Timer(0.5, supervisor.request_stop)
    with node_lock(tmp_path / "agent.lock", "bank-a-1"):
        stopper.start()
        try:
            assert supervisor.run() == 0
        finally:
            stopper.cancel()
    assert len(runtime.started) == 1
    assert _status(tmp_path)["state"] == "STOPPED"
    assert not (tmp_path / "supervisor.lock").exists()


def test_stop_request_during_backoff_ends_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.agent.supervisor")
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
    assert supervisor.state is GethState.STOPPED
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
        assert GethState(after) in GETH_ALLOWED[GethState(before)]


def test_a_node_without_a_sealer_reports_not_sealing(tmp_path: Path) -> None:
    node = _node(tmp_path, SLEEPS)
    assert node.sealer is None  # the default: rpc nodes, and these fake runs
    supervisor = Supervisor(node, ChildRuntime(), FAST)
    stopper = threading.Timer(0.5, supervisor.request_stop)
    stopper.start()
    try:
        assert supervisor.run() == 0
    finally:
        stopper.cancel()
    assert _status(tmp_path)["sealing"] is False


class RecordingSealer:
    """A hand-written SealingSwitch: starts sealing on its third tick."""

    def __init__(self, *, fail_first_tick: bool = False) -> None:
        self.sealing = False
        self.resets = 0
        self.ticks = 0
        self._fail_first_tick = fail_first_tick

    def reset(self) -> None:
        self.resets += 1
        self.sealing = False

    def tick(self) -> bool:
        self.ticks += 1
        if self._fail_first_tick and self.ticks == 1:
            raise OSError("geth.ipc went away")
        if self.ticks == 3:
            self.sealing = True
            return True
        return False

    def restart_wanted(self) -> str | None:
        return None


class StuckCare(RecordingSealer):
    """A node's care that finds the node stuck on its second tick after each start, the
    first `times` starts."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.since_start = 0

    def reset(self) -> None:
        super().reset()
        self.since_start = 0

    def tick(self) -> bool:
        self.since_start += 1
        return super().tick()

    def restart_wanted(self) -> str | None:
        if self.since_start == 2 and self.resets <= self.times:
            return "12 blocks behind the head; its head has not moved for 6s"
        return None


def test_a_restart_the_care_asks_for_stops_and_starts_geth_and_is_never_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = ChildRuntime()
    care = StuckCare(times=FAST.max_restarts + 2)  # more restarts than a crash loop allows
    node = dataclasses.replace(_node(tmp_path, SLEEPS), sealer=care)
    supervisor = Supervisor(node, runtime, FAST)

    def stop_after_the_restarts() -> None:
        deadline = time.monotonic() + 30
        while len(runtime.started) < care.times + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.request_stop()

    stopper = threading.Thread(target=stop_after_the_restarts)
    with caplog.at_level(logging.INFO, logger="orchestrator.agent.supervisor"):
        stopper.start()
        try:
            assert supervisor.run() == 0
        finally:
            stopper.join()
    assert len(runtime.started) == care.times + 1
    assert all(p.poll() is not None for p in runtime.started)  # every geth was stopped
    assert care.resets == care.times + 1
    assert supervisor.restarts == care.times and supervisor.state is GethState.STOPPED
    assert any("restarting geth: 12 blocks behind" in r.getMessage() for r in caplog.records)
    transitions = _transitions(caplog)
    assert ("STOPPED", "STARTING") in transitions and ("RUNNING", "FATAL") not in transitions
    for before, after in transitions:
        assert GethState(after) in GETH_ALLOWED[GethState(before)]


@pytest.mark.parametrize("fail_first_tick", [False, True], ids=["ticks", "a-tick-raises"])
def test_the_sealer_is_reset_on_start_and_ticked_while_geth_runs(
    tmp_path: Path, fail_first_tick: bool
) -> None:
    sealer = RecordingSealer(fail_first_tick=fail_first_tick)
    node = dataclasses.replace(_node(tmp_path, SLEEPS), sealer=sealer)
    supervisor = Supervisor(node, ChildRuntime(), FAST)
    sealing_status: list[object] = []

    def wait_for_sealing_then_stop() -> None:
        deadline = time.monotonic() + 5  # ticks come every 0.5 s: sealing after about 1 s
        while time.monotonic() < deadline:
            status = _status(tmp_path) if (tmp_path / "status.json").exists() else {}
            if status.get("sealing"):
                sealing_status.append(True)
                break
            time.sleep(0.05)
        supervisor.request_stop()

    stopper = threading.Thread(target=wait_for_sealing_then_stop)
    stopper.start()
    try:
        assert supervisor.run() == 0
    finally:
        stopper.join()
    assert sealer.resets == 1
    assert sealer.ticks >= 3
    assert sealing_status == [True]  # status.json was rewritten when sealing began
    assert supervisor.state is GethState.STOPPED


def test_run_without_signal_handling_leaves_the_handlers_alone(tmp_path: Path) -> None:
    """The agent owns SIGTERM/SIGINT and runs the supervisor with handle_signals=False."""
    once = RestartPolicy(max_restarts=0, backoff_initial=0.01, backoff_max=0.01)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    supervisor = Supervisor(_node(tmp_path, EXIT_3), ChildRuntime(), once)
    assert supervisor.run(handle_signals=False) == 1
    assert {sig: signal.getsignal(sig) for sig in before} == before
    supervisor = Supervisor(_node(tmp_path, EXIT_3), ChildRuntime(), once)
    assert supervisor.run() == 1
    assert signal.getsignal(signal.SIGTERM) == supervisor._on_signal  # the default installs
