"""The embedded store: blobs and leases in one SQLite file, safe across processes on one
machine, with Azure Blob Storage's lease rules.

A blob's lease is `available`, `leased` (until `lease_expires`, wall-clock `time.time()`,
which every process on the machine shares) or `broken`. A `leased` lease past its expiry is
*expired*: anyone may take it, and its holder may still renew it until someone takes it,
breaks it or writes the blob, as in Azure. Every read-modify-write runs in one
`BEGIN IMMEDIATE` transaction; waiting for another process's transaction is bounded by
`busy_timeout`, after which the call raises `ServiceUnavailable`.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.boundaries import Blob, Lease
from orchestrator.errors import ServiceUnavailable, StateError
from orchestrator.store import check_conditions, check_duration, lease_id_or_new

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    etag TEXT NOT NULL,
    lease_state TEXT NOT NULL DEFAULT 'available'
        CHECK (lease_state IN ('available', 'leased', 'broken')),
    lease_id TEXT,
    lease_expires REAL
)
"""
_Row = tuple[bytes, str, str, str | None, float | None]  # data, etag, state, id, expires


def _new_etag() -> str:
    return f'"{secrets.token_hex(8)}"'


class LocalStore:
    """A `Store` in the SQLite file `path` (created 0600, its directory 0700, on first use)."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._prepared = False

    def __repr__(self) -> str:
        return f"LocalStore({str(self._path)!r})"

    # -- blobs -------------------------------------------------------------------------

    def read(self, name: str) -> Blob | None:
        with self._session("read", name, write=False) as db:
            row = db.execute(
                "SELECT data, etag, lease_state, lease_expires FROM blobs WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        data, etag, state, expires = row
        return Blob(name, bytes(data), etag, leased=_active(state, expires))

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        check_conditions(if_match, if_absent, obj=self._obj(name))
        etag = _new_etag()
        with self._session("write", name, write=True) as db:
            row = self._row(db, name)
            if row is None:
                if if_match is not None or lease is not None:
                    return None  # no blob to match, no lease to hold
                db.execute(
                    "INSERT INTO blobs (name, data, etag) VALUES (?, ?, ?)", (name, data, etag)
                )
                return etag
            _, current, state, lease_id, expires = row
            if if_absent or (if_match is not None and if_match != current):
                return None
            if _active(state, expires):
                if lease is None or lease.lease_id != lease_id:
                    return None
                db.execute("UPDATE blobs SET data = ?, etag = ? WHERE name = ?", (data, etag, name))
            else:  # a write ends an expired or broken lease for good, as in Azure
                if lease is not None:
                    return None
                db.execute(
                    "UPDATE blobs SET data = ?, etag = ?, lease_state = 'available', "
                    "lease_id = NULL, lease_expires = NULL WHERE name = ?",
                    (data, etag, name),
                )
            return etag

    def list(self, prefix: str) -> list[str]:
        with self._session("list", prefix, write=False) as db:
            rows = db.execute(
                "SELECT name FROM blobs WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return sorted(name for (name,) in rows)

    # -- leases ------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        check_duration(duration, obj=self._obj(name))
        wanted = lease_id_or_new(lease_id, obj=self._obj(name))
        with self._session("acquire the lease", name, write=True) as db:
            row = self._row(db, name)
            if row is None:
                db.execute(
                    "INSERT INTO blobs (name, data, etag) VALUES (?, ?, ?)",
                    (name, b"", _new_etag()),
                )
            elif _active(row[2], row[4]) and row[3] != wanted:
                return None
            self._hold(db, name, wanted, duration)
        return Lease(name, wanted, duration)

    def renew_lease(self, lease: Lease) -> bool:
        with self._session("renew the lease", lease.name, write=True) as db:
            row = self._row(db, lease.name)
            if row is None or row[2] != "leased" or row[3] != lease.lease_id:
                return False
            self._hold(db, lease.name, lease.lease_id, lease.duration)
            return True

    def release_lease(self, lease: Lease) -> None:
        with self._session("release the lease", lease.name, write=True) as db:
            db.execute(
                "UPDATE blobs SET lease_state = 'available', lease_id = NULL, "
                "lease_expires = NULL WHERE name = ? AND lease_id = ?",
                (lease.name, lease.lease_id),
            )

    def break_lease(self, name: str) -> None:
        with self._session("break the lease", name, write=True) as db:
            db.execute(
                "UPDATE blobs SET lease_state = 'broken', lease_expires = NULL "
                "WHERE name = ? AND lease_state = 'leased'",
                (name,),
            )

    # -- the database ------------------------------------------------------------------

    @staticmethod
    def _row(db: sqlite3.Connection, name: str) -> _Row | None:
        row: _Row | None = db.execute(
            "SELECT data, etag, lease_state, lease_id, lease_expires FROM blobs WHERE name = ?",
            (name,),
        ).fetchone()
        return row

    @staticmethod
    def _hold(db: sqlite3.Connection, name: str, lease_id: str, duration: int) -> None:
        db.execute(
            "UPDATE blobs SET lease_state = 'leased', lease_id = ?, lease_expires = ? "
            "WHERE name = ?",
            (lease_id, time.time() + duration, name),
        )

    def _obj(self, name: str) -> str:
        return f"{self._path}:{name}"

    @contextmanager
    def _session(self, op: str, name: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One connection (so the store is safe across threads and forks), in a write
        transaction when `write`; sqlite errors become poactl errors naming `op`."""
        try:
            self._prepare()
            db = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(e, op, name) from e
        try:
            if write:
                db.execute("BEGIN IMMEDIATE")
            yield db
            if write:
                db.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._error(e, op, name) from e
        finally:
            db.close()  # an open transaction rolls back

    def _prepare(self) -> None:
        """Create the directory (0700), the file (0600) and the schema, once per instance."""
        if self._prepared:
            return
        try:
            if not self._path.parent.exists():
                self._path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as e:
            raise StateError(
                f"cannot create the store database: {e.strerror}",
                obj=str(self._path),
                hint="check that the state directory exists and is writable by this user",
            ) from e
        db = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version == 0:  # new: create the schema unless a racing process just did
                db.execute("BEGIN IMMEDIATE")
                (version,) = db.execute("PRAGMA user_version").fetchone()
                if version == 0:
                    db.execute(SCHEMA)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    version = SCHEMA_VERSION
                db.execute("COMMIT")
            if version != SCHEMA_VERSION:
                raise StateError(
                    f"store database has schema version {version}, "
                    f"this poactl reads version {SCHEMA_VERSION}",
                    obj=str(self._path),
                    hint="run the poactl release that created it, or move the file aside",
                )
        finally:
            db.close()
        self._prepared = True

    def _error(self, e: sqlite3.Error, op: str, name: str) -> ServiceUnavailable | StateError:
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
        obj = self._obj(name)
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return ServiceUnavailable(
                f"could not {op}: the store database stayed locked for {self._busy_timeout:g}s",
                obj=obj,
                hint="another poactl process holds the database; retry, and look for a hung one",
            )
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return StateError(
                f"could not {op}: the store database is damaged ({e})",
                obj=obj,
                hint=f"move {self._path} aside (or restore it from a backup); "
                "the leader republishes the network's blobs into a new one",
            )
        return StateError(
            f"could not {op}: {e}",
            obj=obj,
            hint=f"check that {self._path} and its directory are readable and writable "
            "by this user and that the disk is not full",
        )


def _active(state: str, expires: float | None) -> bool:
    return state == "leased" and expires is not None and expires > time.time()
