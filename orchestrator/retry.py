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
