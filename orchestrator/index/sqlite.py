"""The read index in one embedded SQLite file (`index.sqlite`): the default `IndexStore`.

    meta    (key, value)                      the registry held: address, first block
    blocks  (number, hash, parent, logs_before, logs)
    logs    (id, subject, furnisher, ref, block, log_index, tx_hash, kind, data)

`logs.id` is the chain order: logs are appended block by block and only the newest are
ever removed (a rollback), so `logs_before` (the largest id before a block's first log)
tells where a rollback cuts, and the largest id is the number of logs. One index,
on (subject, furnisher, ref), serves both reads (a subject's logs) and the checks (a
tradeline's last state). Blocks are kept while they hold a log or are among the newest
`keep_blocks` (the reach of a rollback); older empty blocks are pruned as it goes.

WAL mode: the follower writes through the one writer connection while readers borrow
connections from a small pool (however many HTTP threads come and go), each read in one
transaction (a consistent snapshot).
`synchronous=NORMAL`: a power cut may lose the last blocks appended, which the follower
reads again from the node.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.index.store import BlockRef, IndexedLog, Kind, Registry, SubjectRead

KEEP_BLOCKS = 1024  # a rollback deeper than this rebuilds the index
_IN_CHUNK = 500  # subjects per query (SQLite allows 32,766 parameters)
READERS = 8  # reader connections kept open for the HTTP threads
SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash BLOB NOT NULL, parent BLOB NOT NULL,
    logs_before INTEGER NOT NULL, logs INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, subject BLOB NOT NULL, furnisher BLOB NOT NULL, ref BLOB NOT NULL,
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash BLOB NOT NULL,
    kind INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_tradeline ON logs (subject, furnisher, ref);
"""
_LOG_COLUMNS = (
    "l.subject, l.furnisher, l.ref, l.block, b.hash, l.log_index, l.tx_hash, l.kind, l.data"
)


class SqliteIndex:
    """An `IndexStore` in the SQLite file at `path` (created with its directory)."""

    def __init__(self, path: Path, *, keep_blocks: int = KEEP_BLOCKS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.keep_blocks = keep_blocks
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.executescript(SCHEMA)
        found = self._meta("schema")
        if found is None:
            self._set_meta({"schema": SCHEMA_VERSION})
        elif found != SCHEMA_VERSION:  # an index is a cache of the chain: rebuild it
            self._clear()
            self._set_meta({"schema": SCHEMA_VERSION})

    def _connect(self) -> sqlite3.Connection:
        """A connection (autocommit; transactions are explicit), usable from any thread
        that holds it alone."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA cache_size=-8000")  # 8 MB each; the OS caches the file too
        return db

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A reader's connection from the pool (a new one when all are busy; at most
        READERS are kept), in one read transaction: one consistent snapshot."""
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            db.execute("BEGIN DEFERRED")
            try:
                yield db
            finally:
                db.execute("COMMIT")
        finally:
            if self._readers.qsize() < READERS:
                self._readers.put(db)
            else:
                db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """The writer's transaction (one writer at a time)."""
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        with self._reading() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, values: Mapping[str, str]) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def _clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM logs")
            db.execute("DELETE FROM blocks")
            db.execute("DELETE FROM meta")

    # -- IndexStore -------------------------------------------------------------------
    def registry(self) -> Registry | None:
        address, start = self._meta("registry"), self._meta("from_block")
        return None if address is None or start is None else Registry(address, int(start))

    def reset(self, registry: Registry) -> None:
        self._clear()
        self._set_meta(
            {
                "schema": SCHEMA_VERSION,
                "registry": registry.address,
                "from_block": str(registry.from_block),
            }
        )

    def tip(self) -> BlockRef | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT number, hash, parent FROM blocks ORDER BY number DESC LIMIT 1"
            ).fetchone()
        return None if row is None else BlockRef(row[0], row[1], row[2])

    def block(self, number: int) -> BlockRef | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT number, hash, parent FROM blocks WHERE number = ?", (number,)
            ).fetchone()
        return None if row is None else BlockRef(row[0], row[1], row[2])

    def last_logs(
        self, tradelines: Sequence[tuple[bytes, bytes, bytes]]
    ) -> dict[tuple[bytes, bytes, bytes], IndexedLog]:
        wanted = set(tradelines)
        subjects = sorted({subject for subject, _, _ in wanted})
        found: dict[tuple[bytes, bytes, bytes], IndexedLog] = {}
        for at in range(0, len(subjects), _IN_CHUNK):  # a few queries for a block of logs
            chunk = subjects[at : at + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._reading() as db:
                rows = db.execute(
                    f"SELECT {_LOG_COLUMNS} FROM logs l JOIN blocks b ON b.number = l.block "  # noqa: S608 - fixed text
                    f"WHERE l.subject IN ({marks}) ORDER BY l.id",
                    chunk,
                ).fetchall()
            for row in rows:  # oldest first: the last one of a tradeline stays
                entry = _log(row)
                if entry.tradeline in wanted:
                    found[entry.tradeline] = entry
        return found

    def append(self, blocks: Sequence[BlockRef], logs: Sequence[IndexedLog]) -> None:
        if not blocks:
            return
        per_block: dict[int, int] = {}
        for entry in logs:
            per_block[entry.block_number] = per_block.get(entry.block_number, 0) + 1
        with self._tx() as db:
            (last_id,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM logs").fetchone()
            rows = []
            for b in blocks:
                rows.append((b.number, b.hash, b.parent, last_id, per_block.get(b.number, 0)))
                last_id += per_block.get(b.number, 0)
            db.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO logs (subject, furnisher, ref, block, log_index, tx_hash, kind, "
                "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.subject, e.furnisher, e.ref, e.block_number, e.log_index, e.tx_hash,
                     int(e.kind), e.data)
                    for e in logs
                ],
            )  # fmt: skip
            db.execute(
                "DELETE FROM blocks WHERE number < ? AND logs = 0",
                (blocks[-1].number - self.keep_blocks,),
            )

    def rollback(self, number: int) -> int:
        with self._tx() as db:
            row = db.execute(
                "SELECT logs_before FROM blocks WHERE number > ? ORDER BY number LIMIT 1",
                (number,),
            ).fetchone()
            if row is None:
                return 0
            removed = db.execute("DELETE FROM logs WHERE id > ?", (row[0],)).rowcount
            db.execute("DELETE FROM blocks WHERE number > ?", (number,))
            return int(removed)

    def read(self, subject: bytes, furnisher: bytes | None = None) -> SubjectRead:
        where, args = "l.subject = ?", [subject]
        if furnisher is not None:
            where, args = where + " AND l.furnisher = ?", [subject, furnisher]
        with self._reading() as db:
            row = db.execute(
                "SELECT number, hash, parent FROM blocks ORDER BY number DESC LIMIT 1"
            ).fetchone()
            rows = db.execute(
                f"SELECT {_LOG_COLUMNS} FROM logs l JOIN blocks b ON b.number = l.block "  # noqa: S608 - fixed text
                f"WHERE {where} ORDER BY l.id",
                args,
            ).fetchall()
        tip = None if row is None else BlockRef(row[0], row[1], row[2])
        return SubjectRead(tip, [_log(r) for r in rows])

    def counts(self) -> Mapping[str, int]:
        with self._reading() as db:
            (logs,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM logs").fetchone()
            (blocks,) = db.execute("SELECT COUNT(*) FROM blocks").fetchone()
        return {"logs": int(logs), "blocks": int(blocks)}

    def close(self) -> None:
        """Close every connection; the store opens new ones if it is used again."""
        with self._write_lock:
            self._writer.close()
            self._writer = self._connect()
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                return


def _log(r: Any) -> IndexedLog:
    subject, furnisher, ref, block, block_hash, log_index, tx_hash, kind, data = r
    return IndexedLog(
        block_number=int(block),
        block_hash=bytes(block_hash),
        log_index=int(log_index),
        tx_hash=bytes(tx_hash),
        kind=Kind(kind),
        subject=bytes(subject),
        furnisher=bytes(furnisher),
        ref=bytes(ref),
        data=bytes(data),
    )
