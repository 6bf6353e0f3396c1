"""The read index's SQLite store and its checks, without a chain: what is kept, what a
rollback removes, what a read sees while the follower writes, and which logs the checks
refuse (logs built exactly as the registry emits them)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from eth_abi.abi import encode

from orchestrator.credit.records import commitment, record_to_contract
from orchestrator.index.checks import check, decode, log_json
from orchestrator.index.errors import LogRefused
from orchestrator.index.sqlite import SqliteIndex
from orchestrator.index.store import BlockRef, IndexedLog, Kind, Registry
from tests.credit.conftest import record

REGISTRY = Registry("0x" + "ab" * 20, 5)
SUBJECT, OTHER = b"\x01" * 32, b"\x02" * 32
BANK = b"\xbb" * 20
REF = b"LOAN-1".ljust(32, b"\0")


def _hash(n: int, fork: int = 0) -> bytes:
    return bytes([fork]) + n.to_bytes(31, "big")


def blocks(first: int, last: int, fork: int = 0) -> list[BlockRef]:
    return [BlockRef(n, _hash(n, fork), _hash(n - 1, fork if n > first else 0))
            for n in range(first, last + 1)]  # fmt: skip


def state(version: int, packed: bytes, *, ccc: bytes = b"\0\0", lie: bool = False) -> int:
    date = int.from_bytes(packed[60:64], "big")
    committed = commitment(packed) ^ (1 if lie else 0)
    return (
        committed << 128
        | 1_700_000_000 << 80
        | int.from_bytes(ccc, "big") << 64
        | date << 32
        | version
    )


def reported(block: int, index: int, version: int, *, subject: bytes = SUBJECT,
             balance: int = 100, lie: bool = False, fork: int = 0) -> IndexedLog:  # fmt: skip
    packed = record_to_contract(record("LOAN-1", current_balance=balance))
    data = encode(
        ["bytes32", "uint256", "bytes32", "bytes32", "bytes2"],
        [REF, state(version, packed, lie=lie), packed[:32], packed[32:64], packed[64:]],
    )
    return IndexedLog(block, _hash(block, fork), index, bytes(32), Kind.REPORTED, subject, BANK,
                      REF, data)  # fmt: skip


def disputed(block: int, version: int, packed_state: int, *, change: int = 1) -> IndexedLog:
    word = (packed_state & ~0xFFFFFFFF) | version
    data = encode(["uint256", "uint8", "address"], [word, change, "0x" + "cc" * 20])
    return IndexedLog(block, _hash(block), 0, bytes(32), Kind.DISPUTE_CHANGED, SUBJECT, BANK, REF,
                      data)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> SqliteIndex:
    s = SqliteIndex(tmp_path / "index.sqlite", keep_blocks=4)
    s.reset(REGISTRY)
    return s


def test_appended_blocks_and_logs_are_read_back_in_chain_order(store: SqliteIndex) -> None:
    assert store.registry() == REGISTRY and store.tip() is None
    store.append(blocks(5, 7), [reported(6, 0, 1), reported(6, 1, 1, subject=OTHER)])
    store.append(blocks(8, 9), [reported(9, 3, 2, balance=90)])
    tip = store.tip()
    assert tip is not None and (tip.number, tip.hash) == (9, _hash(9))
    read = store.read(SUBJECT)
    assert read.tip == tip
    assert [(e.block_number, e.log_index) for e in read.logs] == [(6, 0), (9, 3)]
    assert read.logs[0].block_hash == _hash(6)
    assert store.read(SUBJECT, BANK).logs == read.logs
    assert store.read(SUBJECT, b"\xcc" * 20).logs == []
    assert store.last_logs([(SUBJECT, BANK, REF)])[(SUBJECT, BANK, REF)] == read.logs[1]
    assert store.counts() == {"logs": 3, "blocks": 5}


def test_a_rollback_forgets_the_blocks_above_and_their_logs_only(store: SqliteIndex) -> None:
    store.append(blocks(5, 8), [reported(6, 0, 1), reported(8, 0, 2, balance=90)])
    assert store.rollback(6) == 1
    tip = store.tip()
    assert tip is not None and tip.number == 6
    assert [e.block_number for e in store.read(SUBJECT).logs] == [6]
    store.append(blocks(7, 9, fork=1), [])  # the new fork's blocks
    assert store.counts()["logs"] == 1
    assert store.rollback(100) == 0


def test_old_empty_blocks_are_pruned_but_blocks_with_logs_stay(store: SqliteIndex) -> None:
    store.append(blocks(5, 20), [reported(6, 0, 1)])
    assert store.block(6) is not None  # holds a log
    assert store.block(7) is None and store.block(15) is None  # old and empty
    assert store.block(16) is not None  # among the newest four
    store.append(blocks(21, 22), [reported(22, 0, 2, balance=5)])
    assert store.rollback(18) == 1  # cut by the next kept block's position
    assert [e.block_number for e in store.read(SUBJECT).logs] == [6]


def test_a_reset_forgets_everything_and_holds_the_new_registry(store: SqliteIndex) -> None:
    store.append(blocks(5, 6), [reported(6, 0, 1)])
    other = Registry("0x" + "cd" * 20, 9)
    store.reset(other)
    assert store.registry() == other and store.tip() is None and store.counts()["logs"] == 0


def test_an_index_of_another_schema_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    s = SqliteIndex(path)
    s.reset(REGISTRY)
    s.append(blocks(5, 6), [reported(6, 0, 1)])
    s.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    again = SqliteIndex(path)
    assert again.registry() is None and again.tip() is None


def test_a_read_sees_one_state_while_the_follower_writes(store: SqliteIndex) -> None:
    store.append(blocks(5, 5), [])
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def read() -> None:
        while not stop.is_set():
            r = store.read(SUBJECT)
            assert r.tip is not None
            assert all(e.block_number <= r.tip.number for e in r.logs)
            seen.append((r.tip.number, len(r.logs)))

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(6, 206):
        store.append(blocks(n, n), [reported(n, 0, n - 5)])
    stop.set()
    reader.join()
    assert seen and all(logs == tip - 5 for tip, logs in seen)  # never a torn read


def test_the_checks_take_a_tradeline_s_logs_in_order(store: SqliteIndex) -> None:
    first = reported(6, 0, 1)
    check(first, None)
    check(reported(7, 0, 2, balance=90), first)
    dispute = disputed(8, 2, int.from_bytes(first.data[32:64], "big"))
    check(dispute, first)
    assert decode(log_json(first, REGISTRY.address)) == first
    assert decode(log_json(dispute, REGISTRY.address)) == dispute


@pytest.mark.parametrize(
    ("entry", "before", "problem"),
    [
        (reported(6, 0, 2), None, "version 2 where 1 was due"),
        (reported(7, 0, 3), reported(6, 0, 1), "version 3 where 2 was due"),
        (reported(6, 0, 1, lie=True), None, "does not match the commitment"),
        (disputed(6, 1, 0), None, "never reported"),
        (disputed(7, 2, 0), reported(6, 0, 1), "altered the committed record"),
        (disputed(7, 2, 0, change=0), reported(6, 0, 1), "change 0 is not"),
    ],
)
def test_the_checks_refuse_a_log_that_does_not_follow(
    entry: IndexedLog, before: IndexedLog | None, problem: str
) -> None:
    with pytest.raises(LogRefused, match=problem) as caught:
        check(entry, before)
    assert f"block {entry.block_number} log {entry.log_index}" in str(caught.value)
    assert "poactl index --rebuild" in str(caught.value)


def test_a_log_of_the_wrong_shape_is_refused() -> None:
    raw = log_json(reported(6, 0, 1), REGISTRY.address)
    raw["data"] = raw["data"][:-64]
    with pytest.raises(LogRefused, match="3 topics and 128 bytes of data"):
        decode(raw)
    assert decode({**raw, "topics": ["0x" + "00" * 32]}) is None  # another event


def test_readers_share_a_few_connections_however_many_threads_read(store: SqliteIndex) -> None:
    store.append(blocks(5, 6), [reported(6, 0, 1)])

    def read() -> None:
        assert len(store.read(SUBJECT).logs) == 1

    for _ in range(50):  # one thread per HTTP connection, as the server makes them
        t = threading.Thread(target=read)
        t.start()
        t.join()
    assert store._readers.qsize() <= 8
