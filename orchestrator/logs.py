"""Following a log file as it grows (`poactl logs --follow`), for either runtime: both
append geth's output to the node's `geth.log`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path


def follow_file(path: Path, *, poll: float = 0.5) -> Iterator[str]:
    """Yield lines appended to `path` from now on; survives the file being recreated."""
    position = path.stat().st_size if path.exists() else 0
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < position:  # truncated or recreated
            position = 0
        if size > position:
            with path.open("rb") as f:
                f.seek(position)
                chunk = f.read()
            complete = chunk.rfind(b"\n") + 1
            position += complete
            yield from chunk[:complete].decode(errors="replace").splitlines()
        time.sleep(poll)
