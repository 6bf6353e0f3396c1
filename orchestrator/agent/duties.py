"""The agent's background duties (the lease loop, the watchdog, the votes round), kept
running.

A duty that stops on a permanent error (a `PoaError`: no access, a bad configuration)
ends the whole agent with that error, as before. A duty that dies of anything else (a
bug, a surprise from a library) must not end silently while `/health` still answers
200 and renewals, heartbeats and leader duties have stopped: it is logged (in full once,
then as a count), the agent reports itself unhealthy (`problem`) and the duty runs again
after a backoff. `on_death` runs first: the watchdog's fences at once, since no fence
could come on time while it is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orchestrator.errors import PoaError
from orchestrator.retry import Recurring

log = logging.getLogger(__name__)

RESTART_AFTER = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds before the n-th restart in a row
STABLE_AFTER = 30.0  # a duty that ran this long after a restart is well again


class Duty:
    """`loop` runs until `stop` is set; see the module."""

    def __init__(
        self,
        name: str,
        loop: Callable[[], None],
        *,
        who: str,
        stop: threading.Event,
        on_fatal: Callable[[PoaError], None],
        on_death: Callable[[], None] = lambda: None,
        restart_after: tuple[float, ...] = RESTART_AFTER,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self.name, self._loop, self._stop = name, loop, stop
        self._on_fatal, self._on_death = on_fatal, on_death
        self._restart_after, self._stable_after = restart_after, stable_after
        self._failures = Recurring(log, who, level=logging.ERROR, traceback=True)
        self.deaths = 0
        self._died_at: float | None = None
        self._why = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def problem(self) -> str | None:
        """Why the agent is not well because of this duty (None: it is)."""
        died = self._died_at
        if died is None or time.monotonic() - died >= self._stable_after:
            return None
        return f"its {self.name} died ({self._why}) and was restarted; {self.deaths} death(s)"

    def _run(self) -> None:
        in_a_row = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._loop()
                return  # asked to stop
            except PoaError as e:
                self._on_fatal(e)
                return
            except Exception as e:  # a bug: keep the duty, and say so
                self.deaths += 1
                self._died_at = time.monotonic()
                self._why = f"{type(e).__name__}: {e}"[:200]
                self._failures.failed(f"its {self.name} died", e)
                try:
                    self._on_death()
                except Exception:  # the restart matters more
                    log.exception("%s: after the %s died", self.name, self.name)
            in_a_row = 1 if time.monotonic() - started >= self._stable_after else in_a_row + 1
            pause = self._restart_after[min(in_a_row, len(self._restart_after)) - 1]
            if not self._stop.wait(pause):
                log.warning("restarting the agent's %s", self.name)
