"""What a geth says it sealed: its 'Successfully sealed new block' log lines.

geth logs the line when a block it signed is delivered (after Clique's delay), so the
lines are what a node really published, including a block signed before a pause and
delivered late. Tests and benchmarks read them to check that no identity sealed one
height from two nodes. geth's log stamps carry no year: the current one is assumed.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

_LINE = re.compile(
    r"INFO \[(\d\d)-(\d\d)\|(\d\d:\d\d:\d\d\.\d+)\] Successfully sealed new block\s+number=([\d,]+)"
)


def sealed_blocks(geth_log: Path, *, after: float = 0.0) -> list[tuple[float, int]]:
    """(unix time, block number) of each sealed line stamped after `after`."""
    year = datetime.now().year
    found = []
    try:
        text = geth_log.read_text(errors="replace")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            month, day, clock, number = match.groups()
            when = datetime.strptime(f"{year}-{month}-{day} {clock}", "%Y-%m-%d %H:%M:%S.%f")
            if when.timestamp() > after:
                found.append((when.timestamp(), int(number.replace(",", ""))))
    return found
