"""One way to wait in a test: poll until a condition holds, fail with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, what: str = "a condition", *,
    poll: float = 0.25,
) -> float:  # fmt: skip
    """Wait until `predicate()` is truthy; the seconds it took. AssertionError on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started
