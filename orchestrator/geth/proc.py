"""Processes we did not start ourselves (a supervisor, a stale geth): find and stop them."""

from __future__ import annotations

import signal
from collections.abc import Sequence

import psutil

# Bounded waits for each stop signal, in order: ask nicely, insist, then kill.
STOP_SEQUENCE: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 20.0),
    (signal.SIGTERM, 5.0),
    (signal.SIGKILL, 5.0),
)


def runs_with_arg(pid: int, arg: str) -> bool:
    """Whether `pid` is alive and `arg` is on its command line (guards against pid reuse)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and arg in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def stop_pid(pid: int, sequence: Sequence[tuple[signal.Signals, float]] = STOP_SEQUENCE) -> bool:
    """Stop `pid` signal by signal; True once it is gone."""
    try:
        proc = psutil.Process(pid)
        for sig, wait in sequence:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
                return True
            except psutil.TimeoutExpired:
                continue
    except psutil.NoSuchProcess:
        return True
    return False
