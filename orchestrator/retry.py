"""Retries in one place: only `ServiceUnavailable` is retried, with jitter, until a deadline.

A retry that recovers logs INFO; giving up logs one WARNING and raises the last error.
Permanent errors (`AccessDenied`, `ConfigError`, ...) pass straight through.
"""

from __future__ import annotations

import logging
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
