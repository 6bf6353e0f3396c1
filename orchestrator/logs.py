"""Reading log files: the last lines of one (`poactl logs`, error messages that show
what a node said last) and following one as it grows (`poactl logs --follow`). Both
runtimes append geth's output to the node's `geth.log`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last `lines` lines of `path` (from its last 16 KiB); none if it is unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


GETH_FAILURE_MARKS = ("Fatal:", "ERROR[", "CRIT[", "Low disk space", "panic:")


def last_failure(path: Path, lines: int = 60) -> str | None:
    """The last line of a geth log that says why it failed ("Fatal: ...", an ERROR such
    as geth's own "Low disk space ... Gracefully shutting down"), or None."""
    for line in reversed(log_tail(path, lines)):
        if any(mark in line for mark in GETH_FAILURE_MARKS):
            return line.strip()[:300]
    return None


def follow_file(path: Path, *, poll: float = 0.5) -> Iterator[str]:
    """Lines appended to `path` after this call; survives truncation and recreation."""
    stat = path.stat() if path.exists() else None
    return _follow(path, stat.st_size if stat else 0, stat.st_ino if stat else None, poll)


def _follow(path: Path, position: int, inode: int | None, poll: float) -> Iterator[str]:
    while True:
        stat = path.stat() if path.exists() else None
        size = stat.st_size if stat else 0
        if stat is not None and stat.st_ino != inode:  # recreated: read it from the start
            position, inode = 0, stat.st_ino
        elif size < position:  # truncated
            position = 0
        if size > position:
            with path.open("rb") as f:
                f.seek(position)
                chunk = f.read()
            complete = chunk.rfind(b"\n") + 1
            position += complete
            yield from chunk[:complete].decode(errors="replace").splitlines()
        time.sleep(poll)
