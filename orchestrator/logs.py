"""Following a log file as it grows (`poactl logs --follow`), for either runtime: both
append geth's output to the node's `geth.log`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path


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
