"""The `Store` contract, run against every backend: the SQLite `LocalStore` and the
`AzureBlobStore` on Azurite. Then each backend's ways of failing to ask.

Each test gets a fresh store: a new database under `tmp_path`, or a new container in the
session's Azurite. `make_store()` gives another client of that same store (another agent).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.boundaries import Lease, Store
from orchestrator.errors import AccessDenied, ConfigError, ServiceUnavailable, StateError
from orchestrator.store.azure_blob import AzureBlobStore
from orchestrator.store.local import LocalStore
from tests.services.azurite import ACCOUNT, Azurite, free_port, unique_container

MakeStore = Callable[[], Store]


@pytest.fixture(params=["local", "azurite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    if request.param == "local":
        path = tmp_path / "state" / "store.db"
        return lambda: LocalStore(path)
    azurite: Azurite = request.getfixturevalue("azurite")
    container = unique_container()
    return lambda: AzureBlobStore(azurite.account_url, container, credential=azurite.credential)


@pytest.fixture
def store(make_store: MakeStore) -> Store:
    return make_store()


def stranger(name: str) -> Lease:
    """A lease on `name` that nobody was ever granted."""
    return Lease(name, str(uuid.uuid4()), 15)


# -- blobs ---------------------------------------------------------------------------


def test_read_of_a_missing_blob_is_none(store: Store) -> None:
    assert store.read("network/genesis.json") is None


def test_write_then_read_and_every_write_changes_the_etag(
    store: Store, make_store: MakeStore
) -> None:
    first = store.write("network/genesis.json", b'{"a": 1}')
    assert first
    blob = make_store().read("network/genesis.json")  # another client sees it
    assert blob is not None
    assert (blob.name, blob.data, blob.etag, blob.leased) == (
        "network/genesis.json",
        b'{"a": 1}',
        first,
        False,
    )
    second = store.write("network/genesis.json", b'{"a": 1}')  # same bytes, new version
    assert second and second != first
    again = store.read("network/genesis.json")
    assert again is not None and again.etag == second


def test_if_absent_creates_once(store: Store) -> None:
    assert store.write("enodes/n1.json", b"first", if_absent=True)
    assert store.write("enodes/n1.json", b"second", if_absent=True) is None
    blob = store.read("enodes/n1.json")
    assert blob is not None and blob.data == b"first"


def test_if_match_needs_the_current_etag(store: Store) -> None:
    assert store.write("networkinfo.json", b"v0", if_match='"0x8DEADBEEF"') is None  # absent
    stale = store.write("networkinfo.json", b"v1")
    current = store.write("networkinfo.json", b"v2")
    assert stale and current
    assert store.write("networkinfo.json", b"lost update", if_match=stale) is None
    newer = store.write("networkinfo.json", b"v3", if_match=current)
    assert newer and newer not in (stale, current)
    blob = store.read("networkinfo.json")
    assert blob is not None and (blob.data, blob.etag) == (b"v3", newer)


def test_write_with_both_conditions_is_a_caller_bug(store: Store) -> None:
    with pytest.raises(ValueError, match="if_match and if_absent"):
        store.write("x", b"", if_match='"1"', if_absent=True)


def test_list_is_sorted_and_limited_to_the_prefix(store: Store) -> None:
    for name in ["enodes/b-2", "enodes/b-10", "heartbeats/b-1", "enodes/a-1", "enodesx/c"]:
        assert store.write(name, b"")
    assert store.list("enodes/") == ["enodes/a-1", "enodes/b-10", "enodes/b-2"]
    assert store.list("enodes/b-1") == ["enodes/b-10"]
    assert store.list("") == [
        "enodes/a-1",
        "enodes/b-10",
        "enodes/b-2",
        "enodesx/c",
        "heartbeats/b-1",
    ]
    assert store.list("leases/") == []


# -- leases --------------------------------------------------------------------------


def test_acquire_creates_the_blob_and_excludes_others(store: Store, make_store: MakeStore) -> None:
    lease = store.acquire_lease("leases/bank-a/leader", 15)
    assert lease is not None
    assert (lease.name, lease.duration) == ("leases/bank-a/leader", 15)
    assert str(uuid.UUID(lease.lease_id)) == lease.lease_id
    blob = store.read("leases/bank-a/leader")
    assert blob is not None and (blob.data, blob.leased) == (b"", True)

    other = make_store()
    assert other.acquire_lease("leases/bank-a/leader", 15) is None
    assert other.acquire_lease("leases/bank-a/leader", 30, lease_id=str(uuid.uuid4())) is None
    again = other.acquire_lease("leases/bank-a/leader", 20, lease_id=lease.lease_id)
    assert again == Lease("leases/bank-a/leader", lease.lease_id, 20)  # the holder renews
    assert store.renew_lease(lease)
    assert not store.renew_lease(stranger("leases/bank-a/leader"))
    assert not store.renew_lease(stranger("leases/nothing-here"))


def test_acquire_keeps_an_existing_blobs_data(store: Store) -> None:
    etag = store.write("leases/identity-0", b"bank-a-1")
    assert store.acquire_lease("leases/identity-0", 15, lease_id=str(uuid.uuid4()))
    blob = store.read("leases/identity-0")
    assert blob is not None and (blob.data, blob.etag, blob.leased) == (b"bank-a-1", etag, True)


def test_release_lets_another_acquire(store: Store, make_store: MakeStore) -> None:
    lease = store.acquire_lease("leases/identity-1", 15)
    assert lease is not None
    store.release_lease(lease)
    blob = store.read("leases/identity-1")
    assert blob is not None and not blob.leased
    assert not store.renew_lease(lease)

    other = make_store()
    taken = other.acquire_lease("leases/identity-1", 15)
    assert taken is not None and taken.lease_id != lease.lease_id
    store.release_lease(lease)  # no longer ours: a no-op, not an error
    store.release_lease(stranger("leases/identity-1"))
    store.release_lease(stranger("leases/nothing-here"))
    assert store.acquire_lease("leases/identity-1", 15) is None
    assert other.renew_lease(taken)


def test_break_ends_the_holders_lease(store: Store, make_store: MakeStore) -> None:
    lease = store.acquire_lease("leases/identity-2", 15)
    assert lease is not None
    operator = make_store()
    operator.break_lease("leases/identity-2")
    blob = store.read("leases/identity-2")
    assert blob is not None and not blob.leased
    assert not store.renew_lease(lease)
    assert store.write("leases/identity-2", b"x", lease=lease) is None
    assert operator.acquire_lease("leases/identity-2", 15) is not None

    operator.break_lease("leases/nothing-here")  # nothing to break: no-op
    assert store.write("free", b"")
    operator.break_lease("free")
    assert store.acquire_lease("free", 15) is not None


def test_a_leased_blob_is_written_only_with_its_lease(store: Store) -> None:
    before = store.write("leases/bank-a/leader", b"bank-a-1")
    lease = store.acquire_lease("leases/bank-a/leader", 15)
    assert before and lease
    assert store.write("leases/bank-a/leader", b"usurper") is None
    assert store.write("leases/bank-a/leader", b"usurper", lease=stranger(lease.name)) is None
    assert store.write("leases/bank-a/leader", b"usurper", if_match=before) is None
    etag = store.write("leases/bank-a/leader", b"bank-a-2", lease=lease, if_match=before)
    assert etag and etag != before
    blob = store.read("leases/bank-a/leader")
    assert blob is not None and (blob.data, blob.etag, blob.leased) == (b"bank-a-2", etag, True)

    store.release_lease(lease)
    assert store.write("leases/bank-a/leader", b"bank-a-3", lease=lease) is None
    assert store.write("leases/bank-a/leader", b"bank-a-3")


@pytest.mark.parametrize("duration", [10, 14, 61, 0])
def test_lease_durations_outside_15_to_60_seconds_are_refused(store: Store, duration: int) -> None:
    with pytest.raises(ConfigError) as raised:
        store.acquire_lease("leases/x", duration)
    assert f"lease duration {duration}s is out of range" in str(raised.value)
    assert "leases/x" in str(raised.value)
    assert "hint: use 15 to 60 seconds" in str(raised.value)
    assert store.read("leases/x") is None  # refused before asking


def test_a_lease_id_must_be_a_guid(store: Store) -> None:
    with pytest.raises(ConfigError, match="not a GUID"):
        store.acquire_lease("leases/x", 15, lease_id="bank-a-1")


def _contend(make: MakeStore, name: str, go: Any, results: Any) -> None:
    try:
        store = make()
        go.wait(30)
        lease = store.acquire_lease(name, 15)
        results.put(("won", lease.lease_id) if lease else ("lost", None))
    except Exception as e:
        results.put(("error", repr(e)))


def test_processes_racing_for_a_lease_get_exactly_one(make_store: MakeStore) -> None:
    contenders = 8
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_contend, args=(make_store, "leases/identity-7", go, results))
        for _ in range(contenders)
    ]
    for p in procs:
        p.start()
    go.set()
    answers = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    assert [a for a in answers if a[0] == "error"] == []
    winners = [lease_id for outcome, lease_id in answers if outcome == "won"]
    assert len(winners) == 1, answers
    survivor = make_store()
    assert survivor.acquire_lease("leases/identity-7", 15, lease_id=winners[0]) is not None
    assert survivor.acquire_lease("leases/identity-7", 15) is None


@pytest.mark.slow
def test_leases_expire_after_their_duration(tmp_path: Path, azurite: Azurite) -> None:
    """Both backends in one test, so the 15 s wait is spent once."""
    container = unique_container()
    stores: list[Store] = [
        LocalStore(tmp_path / "store.db"),
        AzureBlobStore(azurite.account_url, container, credential=azurite.credential),
    ]
    started = time.time()
    held = [{n: s.acquire_lease(n, 15) for n in ("taken", "kept", "written")} for s in stores]
    time.sleep(max(0.0, started + 16.5 - time.time()))

    for store, leases in zip(stores, held, strict=True):
        taken, kept, written = leases["taken"], leases["kept"], leases["written"]
        assert taken and kept and written
        for name in leases:
            blob = store.read(name)
            assert blob is not None and not blob.leased, (store, name)
        # expired and taken by another: lost
        assert store.acquire_lease("taken", 15) is not None, store
        assert not store.renew_lease(taken), store
        assert store.write("taken", b"x", lease=taken) is None, store
        # expired but written since (no lease needed any more): lost
        assert store.write("written", b"x", lease=written) is None, store
        assert store.write("written", b"x"), store
        assert not store.renew_lease(written), store
        # expired and untouched: its holder may still renew it, as in Azure
        assert store.renew_lease(kept), store
        blob = store.read("kept")
        assert blob is not None and blob.leased, store
        assert store.acquire_lease("kept", 15) is None, store


# -- LocalStore: files and failures --------------------------------------------------


def test_local_store_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "store" / "store.db"
    LocalStore(path).write("x", b"")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_local_store_reports_a_damaged_database(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"these are not the blobs you are looking for" * 100)
    with pytest.raises(StateError) as raised:
        LocalStore(path).read("network/genesis.json")
    message = str(raised.value)
    assert message.startswith(f"{path}:network/genesis.json: could not read:")
    assert "damaged" in message
    assert f"hint: move {path} aside" in message


def test_local_store_reports_a_path_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "store.db"
    with pytest.raises(StateError) as raised:
        LocalStore(path).write("x", b"")
    assert str(raised.value).startswith(f"{path}: cannot create the store database")
    assert "hint: check that the state directory exists and is writable" in str(raised.value)


def test_local_store_locked_too_long_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    LocalStore(path).write("x", b"")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        store = LocalStore(path, busy_timeout=0.3)
        blob = store.read("x")  # readers are not blocked by a pending write
        assert blob is not None
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as raised:
            store.write("x", b"y")
        assert time.monotonic() - started < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(raised.value)
    assert message.startswith(f"{path}:x: could not write: the store database stayed")
    assert "hint: another poactl process holds the database" in message
    assert LocalStore(path).write("x", b"y")


# -- AzureBlobStore: failures --------------------------------------------------------


def test_azure_store_with_nothing_listening_is_unavailable_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
    store = AzureBlobStore(url, "net", credential={"account_name": ACCOUNT, "account_key": "a2V5"})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        store.acquire_lease("leases/bank-a/leader", 15)
    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert message.startswith(
        f"{url}/net/leases/bank-a/leader: could not acquire the lease: storage did"
    )
    assert f"hint: check that {url}/net is reachable" in message


def test_azure_store_with_a_wrong_key_is_denied(azurite: Azurite) -> None:
    wrong = {"account_name": ACCOUNT, "account_key": "d3Jvbmcga2V5"}
    store = AzureBlobStore(azurite.account_url, unique_container(), credential=wrong)
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: store.read("network/genesis.json"), "read"),
        (lambda: store.write("network/genesis.json", b"{}"), "write"),
        (store.ensure_container, "create the container"),
    ]
    for call, op in calls:
        with pytest.raises(AccessDenied) as raised:
            call()
        message = str(raised.value)
        assert f"could not {op}: storage refused it (403 AuthorizationFailure)" in message
        assert "Storage Blob Data Contributor" in message
        assert "storage account key" in message


@pytest.mark.slow
def test_azure_store_on_hung_or_stopped_storage_is_unavailable(
    azurite_factory: Callable[[], Azurite],
) -> None:
    azurite = azurite_factory()
    store = AzureBlobStore(
        azurite.account_url,
        "net",
        credential=azurite.credential,
        connection_timeout=1.0,
        read_timeout=2.0,
    )
    assert store.write("network/genesis.json", b"{}")

    azurite.pause()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        store.read("network/genesis.json")
    elapsed = time.monotonic() - started
    azurite.resume()
    assert 1.5 < elapsed < 1.0 + 2.0 + 1.0
    message = str(raised.value)
    assert message.startswith(
        f"{azurite.account_url}/net/network/genesis.json: could not read: storage did not answer"
    )
    assert "read timed out" in message.lower()
    assert "hint:" in message
    blob = store.read("network/genesis.json")
    assert blob is not None and blob.data == b"{}"

    azurite.stop()
    with pytest.raises(
        ServiceUnavailable, match="could not renew the lease: storage did not answer"
    ):
        store.renew_lease(stranger("network/genesis.json"))
    azurite.start()  # same port, same data
    blob = store.read("network/genesis.json")
    assert blob is not None and blob.data == b"{}"


def test_azure_store_creates_its_container_on_first_write(azurite: Azurite) -> None:
    container = unique_container()
    store = AzureBlobStore(azurite.account_url, container, credential=azurite.credential)
    assert store.list("") == []  # reading a missing container finds nothing
    assert store.read("x") is None
    assert store.acquire_lease("leases/x", 15) is not None  # creates container and blob
    store.ensure_container()  # already there: fine
    assert store.list("") == ["leases/x"]
