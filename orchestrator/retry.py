"""Retries in one place: only `ServiceUnavailable` is retried, with jitter, until a deadline.

A retry that recovers logs INFO; giving up logs one WARNING and raises the last error.
Permanent errors (`AccessDenied`, `ConfigError`, ...) pass straight through.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

from orchestrator.errors import ServiceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_transient(
    fn: Callable[[], T],
    *,
    what: str,
    timeout: float,
    first_wait: float = 0.2,
    max_wait: float = 5.0,
) -> T:
    """Call `fn` until it returns or `timeout` seconds have passed; `what` names it in logs."""
    started = time.monotonic()
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    retrying = Retrying(
        retry=retry_if_exception_type(ServiceUnavailable),
        stop=stop_before_delay(timeout),
        wait=wait_exponential_jitter(multiplier=first_wait, max=max_wait, jitter=first_wait),
        reraise=True,
    )
    try:
        result = retrying(attempt)
    except ServiceUnavailable as e:
        log.warning(
            "%s gave up after %d attempts in %.1fs: %s",
            what, attempts, time.monotonic() - started, e.what,
        )  # fmt: skip
        raise
    if attempts > 1:
        log.info("%s succeeded after %d attempts", what, attempts)
    return result


class Backoff:
    """A loop's schedule while what it calls keeps failing: the pause doubles from `base`
    up to `cap`, with jitter; the first failure logs one WARNING, later ones DEBUG, and
    the first success after them one INFO. For loops that must go on (the agent's lease
    loop, the monitor's collector) rather than give up at a deadline."""

    def __init__(self, who: str, *, base: float, cap: float) -> None:
        self.who, self.base, self.cap = who, base, cap
        self.failures = 0
        self.last_problem: str | None = None

    def failed(self, error: Exception) -> None:
        self.failures += 1
        self.last_problem = str(error).replace("\n", " ")
        if self.failures == 1:
            log.warning("%s: %s (retrying with backoff)", self.who, self.last_problem)
        else:
            log.debug("%s: still failing (%d): %s", self.who, self.failures, error)

    def succeeded(self) -> None:
        if self.failures:
            log.info("%s: answers again after %d tries", self.who, self.failures)
        self.failures = 0

    def pause(self) -> float:
        if not self.failures:
            return self.base
        jitter = random.uniform(0.8, 1.2)  # noqa: S311 - not crypto
        return float(min(self.base * 2**self.failures, self.cap) * jitter)


class Recurring:
    """How a loop logs a failure that comes back on every round (a loop that runs every
    0.5-2 s must not print a traceback each time): the first occurrence in full — at
    `level`, with its traceback when `traceback` — then the same failure only as a
    reminder with its count every `remind_every` seconds, raised to ERROR once it has
    lasted `escalate_after` seconds; a different failure is logged in full again; the
    first success after failures logs one INFO."""

    def __init__(
        self,
        logger: logging.Logger,
        who: str,
        *,
        level: int = logging.WARNING,
        traceback: bool = False,
        remind_every: float = 60.0,
        escalate_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.who, self.level, self.traceback = logger, who, level, traceback
        self.remind_every, self.escalate_after, self._clock = remind_every, escalate_after, clock
        self.count = 0
        self._key: tuple[str, str] | None = None
        self._since = self._reminded = 0.0

    @property
    def failing_for(self) -> float | None:
        """Seconds since the current run of failures began (None: not failing)."""
        return self._clock() - self._since if self.count else None

    def failed(self, what: str, error: BaseException) -> None:
        now, key = self._clock(), (what, type(error).__name__)
        if key != self._key:
            self._key, self.count, self._since, self._reminded = key, 0, now, now
            self.log.log(
                self.level, "%s: %s: %s", self.who, what, error,
                exc_info=error if self.traceback else None,
            )  # fmt: skip
        self.count += 1
        if now - self._reminded >= self.remind_every:
            self._reminded = now
            lasted = now - self._since
            level = logging.ERROR if lasted >= self.escalate_after else self.level
            self.log.log(
                level, "%s: %s: still failing (%d times in %.0fs): %s",
                self.who, what, self.count, lasted, str(error).replace("\n", " "),
            )  # fmt: skip

    def succeeded(self) -> None:
        if self.count:
            what = self._key[0] if self._key else ""
            self.log.info("%s: %s: works again after %d failures", self.who, what, self.count)
        self.count, self._key = 0, None
