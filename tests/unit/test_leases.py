"""Holding a blob lease (orchestrator.network.leases) on the real embedded store."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from orchestrator.boundaries import Lease, Store
from orchestrator.network.leases import HolderInfo, LeaseKeeper, holder_of
from orchestrator.store.local import LocalStore
from tests.helpers.stores import DelegatingStore

NAME = "leases/bank-a/identity-0"
SLOW = 0.3  # seconds the slow store takes to answer


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "s.sqlite")


def keeper(store: Store, holder: str, *, margin: float = 6.5) -> LeaseKeeper:
    return LeaseKeeper(store, NAME, duration=15, holder=holder, margin=margin)


class SlowStore(DelegatingStore):
    """The real store, answering lease calls `SLOW` seconds late (a slow network)."""

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        time.sleep(SLOW)
        return super().acquire_lease(name, duration, lease_id=lease_id)

    def renew_lease(self, lease: Lease) -> bool:
        time.sleep(SLOW)
        return super().renew_lease(lease)


# -- acquire, renew and when to fence --------------------------------------------------


def test_a_new_keeper_holds_nothing(store: LocalStore) -> None:
    k = keeper(store, "bank-a-1")
    assert not k.held
    assert not k.renew_due
    assert k.lease is None


def test_acquire_holds_the_lease_and_sets_when_to_fence(store: LocalStore) -> None:
    k = keeper(store, "bank-a-1")
    before = time.monotonic()
    assert k.try_acquire()
    after = time.monotonic()
    assert k.held
    assert k.lease is not None
    assert k.lease.name == NAME
    assert k.lease.duration == 15
    assert before <= k.renewed_at <= after
    assert k.fence_at == k.renewed_at + 15 - 6.5


def test_with_a_slow_store_renewed_at_is_the_send_time(store: LocalStore) -> None:
    """The store counts the lease from when it *received* the call; counting from when
    we sent it keeps our idea of the expiry no later than the store's."""
    k = keeper(SlowStore(store), "bank-a-1")
    before = time.monotonic()
    assert k.try_acquire()
    after = time.monotonic()
    assert after - before >= SLOW
    assert before <= k.renewed_at < before + SLOW / 2  # not when the answer came back
    assert k.fence_at == pytest.approx(k.renewed_at + 15 - 6.5, abs=1e-9)

    previous = k.renewed_at
    before = time.monotonic()
    assert k.renew()
    assert previous < before <= k.renewed_at < before + SLOW / 2
    assert k.fence_at == pytest.approx(before + 15 - 6.5, abs=SLOW / 2)


def test_renew_is_due_after_a_third_of_the_duration(store: LocalStore) -> None:
    k = keeper(store, "bank-a-1")
    assert k.try_acquire()
    assert not k.renew_due
    k.renewed_at -= 15 / 3 + 0.01  # as if five seconds had passed
    assert k.renew_due
    assert k.renew()
    assert not k.renew_due
    assert k.renewed_at == pytest.approx(time.monotonic(), abs=1.0)


class CountingStore(DelegatingStore):
    """The real store, counting renewals."""

    renewals = 0

    def renew_lease(self, lease: Lease) -> bool:
        self.renewals += 1
        return super().renew_lease(lease)


def test_a_renewal_later_than_one_lease_duration_counts_as_lost(store: LocalStore) -> None:
    """The store would still renew an expired lease nobody took; the keeper does not ask:
    somebody may have held it and signed meanwhile (a holder frozen past its expiry)."""
    counting = CountingStore(store)
    k = keeper(counting, "bank-a-1")
    assert k.try_acquire()
    k.renewed_at -= 45  # frozen for 45 s
    assert not k.renew()
    assert not k.held and counting.renewals == 0
    late = r"came 4[5-9]\.\ds after the last one, longer than the lease's 15s"
    assert re.search(late, k.lost_why)
    assert re.search(r"expired 3\d\.\ds ago", k.lost_why)


def test_a_renewal_after_the_keeper_was_forgotten_is_refused_not_an_assertion(
    store: LocalStore,
) -> None:
    """The watchdog forgets the keeper (a fence) while the lease loop is about to renew."""
    k = keeper(store, "bank-a-1")
    assert k.try_acquire()
    k.forget()
    assert not k.renew()
    assert "fenced" in k.lost_why


def test_a_renewal_answered_after_a_fence_does_not_revive_the_lease(store: LocalStore) -> None:
    class FencedMeanwhile(DelegatingStore):
        def renew_lease(self, lease: Lease) -> bool:
            answer = super().renew_lease(lease)
            k.forget()  # the watchdog fences while the store answers
            return answer

    k = keeper(FencedMeanwhile(store), "bank-a-1")
    assert k.try_acquire()
    before = k.renewed_at
    assert not k.renew()
    assert not k.held and k.renewed_at == before


def test_fence_at_is_renewed_at_plus_duration_minus_margin(store: LocalStore) -> None:
    for margin in (0.0, 3.5, 6.5, 14.0):
        k = LeaseKeeper(store, f"leases/m/{margin}", duration=20, holder="n", margin=margin)
        assert k.try_acquire()
        assert k.fence_at == k.renewed_at + 20 - margin
        k.release()


def test_the_holder_is_written_into_the_lease_blob(store: LocalStore) -> None:
    k = keeper(store, "bank-a-1")
    assert k.try_acquire()
    blob = store.read(NAME)
    assert blob is not None
    assert blob.leased
    doc = json.loads(blob.data)
    assert doc["holder"] == "bank-a-1"
    assert isinstance(doc["since"], str)


# -- two keepers -----------------------------------------------------------------------


def test_a_second_keeper_cannot_acquire_while_the_first_holds(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = keeper(LocalStore(path), "bank-a-1"), keeper(LocalStore(path), "bank-a-3")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert not second.held
    assert second.lease is None
    assert holder_of(LocalStore(path), NAME).holder == "bank-a-1"  # not overwritten
    assert first.renew()  # the holder keeps it
    assert not second.try_acquire()


def test_holder_of_names_the_holder_and_whether_it_is_leased(store: LocalStore) -> None:
    assert holder_of(store, NAME) == HolderInfo(None, leased=False)
    k = keeper(store, "bank-a-1")
    assert k.try_acquire()
    info = holder_of(store, NAME)
    assert info.holder == "bank-a-1"
    assert info.leased is True
    assert info.since is not None
    k.release()
    after = holder_of(store, NAME)
    assert after.leased is False
    assert after.holder == "bank-a-1"  # the last holder, as written in the blob


def test_release_lets_another_acquire(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = keeper(LocalStore(path), "bank-a-1"), keeper(LocalStore(path), "bank-a-3")
    assert first.try_acquire()
    first.release()
    assert not first.held
    assert second.try_acquire()
    info = holder_of(LocalStore(path), NAME)
    assert (info.holder, info.leased) == ("bank-a-3", True)
    assert not first.try_acquire()


def test_a_lease_broken_under_the_holder_is_lost_on_renew(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = keeper(LocalStore(path), "bank-a-1"), keeper(LocalStore(path), "bank-a-3")
    assert first.try_acquire()
    LocalStore(path).break_lease(NAME)  # an operator's override
    assert second.try_acquire()
    assert not first.renew()
    assert not first.held  # forgotten: the agent fences
    assert holder_of(LocalStore(path), NAME).holder == "bank-a-3"


def test_forget_drops_the_lease_without_asking_the_store(store: LocalStore) -> None:
    k = keeper(store, "bank-a-1")
    assert k.try_acquire()
    k.forget()
    assert not k.held
    assert holder_of(store, NAME).leased  # still leased in the store until it expires
    k.release()  # nothing to release any more
    assert holder_of(store, NAME).leased


def test_holder_of_a_blob_that_is_not_a_holder_record(store: LocalStore) -> None:
    store.write(NAME, b"not json")
    assert holder_of(store, NAME) == HolderInfo(None, leased=False)
    assert store.acquire_lease("leases/bank-a/leader", 15) is not None  # empty blob
    assert holder_of(store, "leases/bank-a/leader") == HolderInfo(None, leased=True)


# -- the identity's high-water mark in the lease blob ------------------------------------


def _mark(store: Store) -> object:
    blob = store.read(NAME)
    return json.loads(blob.data).get("signed") if blob else None


def test_the_mark_is_kept_across_holders_and_raised_only_under_the_lease(
    store: LocalStore,
) -> None:
    first = keeper(store, "bank-a-1")
    assert first.try_acquire()
    assert first.inherited_height == -1
    assert first.record_height(20)
    assert _mark(store) == 20
    store.break_lease(NAME)
    assert not first.record_height(21)  # lost: nothing recorded
    second = keeper(store, "bank-a-3")
    assert second.try_acquire()
    assert second.inherited_height == 20  # taken with the lease, kept in the blob
    assert _mark(store) == 20


def test_a_holder_that_stops_lowers_the_mark_to_its_head_never_below_what_it_inherited(
    store: LocalStore,
) -> None:
    first = keeper(store, "bank-a-1")
    assert first.try_acquire()
    assert first.record_height(10)
    first.release()
    second = keeper(store, "bank-a-2")
    assert second.try_acquire()
    assert second.record_height(12)  # signed 12; its geth stopped before publishing it
    assert not second.lower_height(12)  # nothing to lower
    assert second.lower_height(11)
    assert _mark(store) == 11
    assert not second.lower_height(9)  # below the first holder's 10: never
    assert _mark(store) == 11
