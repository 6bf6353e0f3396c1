"""follow_file: only lines appended after it starts, whole lines only, across a recreate.

The generator never ends by itself, so a reader thread takes a bounded number of lines
from it (`itertools.islice`) and hands them over through a queue; the test waits for
each line with a timeout and so fails instead of hanging.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.geth.sealed import sealed_blocks
from orchestrator.logs import follow_file

POLL = 0.01
WAIT = 5.0  # seconds to wait for a line that should come


class Follower:
    """follow_file(path) in a thread, stopping after `limit` lines."""

    def __init__(self, path: Path, limit: int) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.started = threading.Event()
        self._gen = follow_file(path, poll=POLL)
        self._limit = limit
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.started.wait(WAIT)

    def _run(self) -> None:
        # The generator takes its starting position on its first step, right after this.
        self.started.set()
        for line in itertools.islice(self._gen, self._limit):
            self.lines.put(line)
        # Between steps the generator holds no open file: dropping it is enough.

    def take(self, n: int) -> list[str]:
        return [self.lines.get(timeout=WAIT) for _ in range(n)]

    def nothing_more(self, wait: float = 0.2) -> bool:
        time.sleep(wait)
        return self.lines.empty()

    def join(self) -> None:
        self._thread.join(timeout=WAIT)
        assert not self._thread.is_alive()


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def settle() -> None:
    """Give the follower time to take its starting position (several polls)."""
    time.sleep(20 * POLL)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "geth.log"
    path.write_text("old 1\nold 2\n")
    return path


def test_only_appended_lines_are_yielded(log: Path) -> None:
    follower = Follower(log, limit=3)
    settle()
    append(log, "new 1\nnew 2\n")
    assert follower.take(2) == ["new 1", "new 2"]
    append(log, "new 3\n")
    assert follower.take(1) == ["new 3"]
    follower.join()


def test_a_partial_line_waits_for_its_end(log: Path) -> None:
    follower = Follower(log, limit=2)
    settle()
    append(log, "INFO Imported new chain seg")
    assert follower.nothing_more()
    append(log, "ment number=7\nWARN next\n")
    assert follower.take(2) == ["INFO Imported new chain segment number=7", "WARN next"]
    follower.join()


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "geth.log"
    follower = Follower(path, limit=1)
    settle()
    path.write_text("first line of a new geth\n")
    assert follower.take(1) == ["first line of a new geth"]
    follower.join()


def test_a_truncated_file_is_read_again_from_its_start(log: Path) -> None:
    follower = Follower(log, limit=2)
    settle()
    append(log, "before truncation\n")
    assert follower.take(1) == ["before truncation"]
    log.write_text("after\n")  # shorter than what was read: a new file
    assert follower.take(1) == ["after"]
    follower.join()


def test_undecodable_bytes_do_not_end_the_follow(log: Path) -> None:
    follower = Follower(log, limit=2)
    settle()
    with log.open("ab") as f:
        f.write(b"bad \xff byte\nfine\n")
    assert follower.take(2) == ["bad \ufffd byte", "fine"]
    follower.join()


def test_sealed_blocks_reads_geths_sealed_lines(tmp_path: Path) -> None:
    log = tmp_path / "geth.log"
    year = datetime.now().year
    log.write_text(
        "INFO [11-30|13:30:13.006] Successfully sealed new block            number=4 "
        "sealhash=b734f4..da9000 hash=d2cb12..8ab6c0 elapsed=1.491s\n"
        'WARN [11-30|13:30:15.016] Block sealing failed err="signed recently"\n'
        "INFO [11-30|13:31:00.500] Successfully sealed new block            number=123,456 "
        "sealhash=aa..bb hash=cc..dd elapsed=2s\n"
    )
    first = datetime(year, 11, 30, 13, 30, 13, 6000).timestamp()
    assert sealed_blocks(log) == [
        (first, 4),
        (datetime(year, 11, 30, 13, 31, 0, 500000).timestamp(), 123456),
    ]
    assert [n for _, n in sealed_blocks(log, after=first)] == [123456]
    assert sealed_blocks(tmp_path / "missing.log") == []
