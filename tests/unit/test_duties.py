"""The agent's background duties (`agent.duties.Duty`): a permanent error ends the agent;
any other death is logged once in full, makes the agent unhealthy and the duty runs
again; and failures that repeat every round are logged once, then as reminders
(`retry.Recurring`)."""

from __future__ import annotations

import logging
import threading

import pytest

from orchestrator.agent.duties import Duty
from orchestrator.errors import ConfigError, PoaError
from orchestrator.retry import Recurring
from tests.helpers.waiting import wait_for


class Loop:
    """A duty's loop that dies `deaths` times, then runs until asked to stop."""

    def __init__(self, stop: threading.Event, deaths: int, error: Exception) -> None:
        self.stop, self.deaths, self.error = stop, deaths, error
        self.runs = 0
        self.running = threading.Event()

    def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.deaths:
            raise self.error
        self.running.set()
        self.stop.wait()


def duty(loop: Loop, stop: threading.Event, **kw: object) -> tuple[Duty, list[PoaError]]:
    fatal: list[PoaError] = []
    d = Duty("lease loop", loop, who="bank-a-1", stop=stop, on_fatal=fatal.append,
             restart_after=(0.05,), **kw)  # type: ignore[arg-type]  # fmt: skip
    return d, fatal


def test_a_duty_that_dies_of_a_bug_is_restarted_and_makes_the_agent_unhealthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    loop = Loop(stop, deaths=3, error=AssertionError("lease is None"))
    deaths: list[int] = []
    d, fatal = duty(loop, stop, on_death=lambda: deaths.append(1))
    with caplog.at_level(logging.INFO):
        d.start()
        try:
            wait_for(loop.running.is_set, 5, "the duty to run again")
            assert d.deaths == 3 and len(deaths) == 3 and fatal == []
            assert d.problem == (
                "its lease loop died (AssertionError: lease is None) and was restarted; 3 death(s)"
            )
        finally:
            stop.set()
            d.join(5)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # in full once, not on every death
    assert sum("restarting the agent's lease loop" in r.getMessage() for r in caplog.records) == 3


def test_the_problem_clears_once_the_duty_runs_well_again() -> None:
    stop = threading.Event()
    loop = Loop(stop, deaths=1, error=RuntimeError("surprise"))
    d, _ = duty(loop, stop, stable_after=0.2)
    d.start()
    try:
        wait_for(loop.running.is_set, 5, "the duty to run again")
        wait_for(lambda: d.problem is None, 5, "the problem to clear")
    finally:
        stop.set()
        d.join(5)


def test_a_permanent_error_ends_the_agent_and_is_not_retried() -> None:
    stop = threading.Event()
    error = ConfigError("no access", obj="vault", hint="check the credentials")
    loop = Loop(stop, deaths=1, error=error)
    d, fatal = duty(loop, stop)
    d.start()
    d.join(5)
    assert fatal == [error] and loop.runs == 1 and d.problem is None


def test_a_recurring_failure_is_logged_in_full_once_then_reminded_then_escalated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = Recurring(
        logging.getLogger("test"), "bank-a-1", remind_every=60, escalate_after=300,
        traceback=True, clock=lambda: now[0],
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="test"):
        for _ in range(1000):  # a round every 0.5 s for 500 s
            failures.failed("reconciling failed", OSError("geth.ipc went away"))
            now[0] += 0.5
        failures.succeeded()
    lines = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert lines[0] == ("WARNING", "bank-a-1: reconciling failed: geth.ipc went away", True)
    reminders = [line for line in lines[1:-1]]
    assert len(reminders) == 8  # one a minute, not two a second
    assert all("still failing" in m and not tb for _, m, tb in reminders)
    assert reminders[0][0] == "WARNING" and reminders[-1][0] == "ERROR"  # escalated
    assert "(601 times in 300s)" in reminders[4][1] and reminders[4][0] == "ERROR"
    assert lines[-1] == ("INFO", "bank-a-1: reconciling failed: works again after 1000 failures",
                         False)  # fmt: skip
