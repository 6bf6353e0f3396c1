"""The monitor's memory: heartbeats and the chain's blocks, in one SQLite file.

Kept for `KEEP_SECONDS` (two hours: the page shows the last 30 minutes of heartbeats
and the last hour of blocks), pruned as it goes, so the file stays small (a two-bank
consortium at a 2 s period adds about 3,600 block rows an hour), and read back after a
restart: a monitor that restarts shows the same history. Reorgs are kept with it.

A heartbeat is keyed by its (member, node) and stamped with the monitor's own time of
observation (`at`); the publisher's own time (`sent`) only tells one from the next.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KEEP_SECONDS = 2 * 3600
HOUR_BLOCKS_MARGIN = 10  # blocks read beyond an hour's worth on the first poll
SCHEMA_VERSION = 2  # 2: heartbeats keyed by (member, node), with `sent` and `block_time`
SCHEMA = """
CREATE TABLE IF NOT EXISTS heartbeats (
    node TEXT NOT NULL, at REAL NOT NULL, member TEXT NOT NULL, state TEXT, block INTEGER,
    hash TEXT, peers INTEGER, sealing INTEGER, signer TEXT, sent TEXT, block_time INTEGER,
    message TEXT, PRIMARY KEY (member, node, at)
);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent TEXT NOT NULL,
    time INTEGER NOT NULL, txs INTEGER NOT NULL, signer TEXT, in_turn INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reorgs (
    at REAL NOT NULL, height INTEGER NOT NULL, depth INTEGER NOT NULL,
    old_hash TEXT NOT NULL, new_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_time ON blocks (time);
"""


@dataclass(frozen=True)
class Heartbeat:
    node: str
    at: float  # unix time the monitor first saw it (never the publisher's clock)
    member: str
    state: str
    block: int | None
    hash: str | None
    peers: int | None
    sealing: bool
    signer: str | None
    leader: bool = False  # not kept in the history: only the latest round's claim counts
    sent: str = ""  # the publisher's own time, as it wrote it
    block_time: int | None = None  # the timestamp of the node's head block
    message: str | None = None  # why the agent ended (on its last heartbeat)

    @property
    def key(self) -> tuple[str, str]:
        return self.member, self.node


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent: str
    time: int
    txs: int
    signer: str | None
    in_turn: bool


@dataclass(frozen=True)
class Reorg:
    at: float
    height: int  # the first height whose block was replaced
    depth: int  # how many blocks were replaced
    old_hash: str
    new_hash: str


class History:
    """One monitor's history; safe to use from its collector and its HTTP threads."""

    def __init__(self, path: Path, *, keep_seconds: float = KEEP_SECONDS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()
        self._db.executescript(SCHEMA)

    def _migrate(self) -> None:
        """A history from before version 2 keyed heartbeats by node alone, stamped by
        their publishers: its heartbeats are dropped (two hours at most), blocks kept."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version < SCHEMA_VERSION:
            self._db.execute("DROP TABLE IF EXISTS heartbeats")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------
    def add_heartbeats(self, beats: Iterable[Heartbeat]) -> int:
        """Store the heartbeats not seen before; how many were new."""
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO heartbeats VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(b.node, b.at, b.member, b.state, b.block, b.hash, b.peers, int(b.sealing),
                  b.signer, b.sent, b.block_time, b.message) for b in beats],
            )  # fmt: skip
            return db.total_changes - before

    def add_blocks(self, blocks: Iterable[Block]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO blocks VALUES (?,?,?,?,?,?,?)",
                [(b.number, b.hash, b.parent, b.time, b.txs, b.signer, int(b.in_turn))
                 for b in blocks],
            )  # fmt: skip

    def replace_from(self, height: int, reorg: Reorg) -> None:
        """A reorg: forget the blocks from `height` up and remember what happened."""
        with self._tx() as db:
            db.execute("DELETE FROM blocks WHERE number >= ?", (height,))
            db.execute(
                "INSERT INTO reorgs VALUES (?,?,?,?,?)",
                (reorg.at, reorg.height, reorg.depth, reorg.old_hash, reorg.new_hash),
            )

    def prune(self, now: float | None = None) -> None:
        cutoff = (now or time.time()) - self.keep_seconds
        with self._tx() as db:
            db.execute("DELETE FROM heartbeats WHERE at < ?", (cutoff,))
            db.execute(
                "DELETE FROM blocks WHERE time < ? AND number < (SELECT MAX(number) FROM blocks)",
                (cutoff,),
            )
            db.execute("DELETE FROM reorgs WHERE at < ?", (cutoff,))

    # -- reading ---------------------------------------------------------------------
    def _rows(self, sql: str, *args: object) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def heartbeats_since(self, since: float) -> list[Heartbeat]:
        rows = self._rows("SELECT * FROM heartbeats WHERE at >= ? ORDER BY at", since)
        return [_heartbeat(r) for r in rows]

    def last_heartbeats(self) -> dict[tuple[str, str], Heartbeat]:
        """Each (member, node)'s newest heartbeat, however old."""
        rows = self._rows(
            "SELECT h.* FROM heartbeats h JOIN (SELECT member, node, MAX(at) AS at "
            "FROM heartbeats GROUP BY member, node) m "
            "ON h.member = m.member AND h.node = m.node AND h.at = m.at"
        )
        return {(r["member"], r["node"]): _heartbeat(r) for r in rows}

    def head(self) -> Block | None:
        rows = self._rows("SELECT * FROM blocks ORDER BY number DESC LIMIT 1")
        return _block(rows[0]) if rows else None

    def block(self, number: int) -> Block | None:
        rows = self._rows("SELECT * FROM blocks WHERE number = ?", number)
        return _block(rows[0]) if rows else None

    def blocks_since(self, since: float) -> list[Block]:
        rows = self._rows("SELECT * FROM blocks WHERE time >= ? ORDER BY number", since)
        return [_block(r) for r in rows]

    def reorgs_since(self, since: float) -> list[Reorg]:
        rows = self._rows("SELECT * FROM reorgs WHERE at >= ? ORDER BY at", since)
        return [Reorg(r["at"], r["height"], r["depth"], r["old_hash"], r["new_hash"]) for r in rows]


def _heartbeat(r: sqlite3.Row) -> Heartbeat:
    return Heartbeat(
        node=r["node"], at=r["at"], member=r["member"], state=r["state"], block=r["block"],
        hash=r["hash"], peers=r["peers"], sealing=bool(r["sealing"]), signer=r["signer"],
        sent=r["sent"] or "", block_time=r["block_time"], message=r["message"],
    )  # fmt: skip


def _block(r: sqlite3.Row) -> Block:
    return Block(
        number=r["number"], hash=r["hash"], parent=r["parent"], time=r["time"], txs=r["txs"],
        signer=r["signer"], in_turn=bool(r["in_turn"]),
    )  # fmt: skip
