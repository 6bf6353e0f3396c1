"""One bank's view of the consortium: its own store, plus what the other banks publish.

A bank writes only its own store; every consortium-data blob it writes there (its member
descriptor, its nodes' enodes and heartbeats, the genesis it founded) is also put into
its publication, which the other banks read and cannot write. Leases stay in the own
store. A read looks in the own store first and then in the other banks' published data,
taking each member's word only for what is that member's (`names.publisher_of`):
bank B's publication cannot speak for bank A's nodes, and a name without its member
part is nobody's. The network's shared blobs (the genesis, the network information, the
contract addresses) come from one member only, `shared_from`: the founder for the
founding banks, the member a bank joined from for a joined bank (none for the founder
itself). The genesis and network information, which never change, are adopted into the
own store and republished, so a joining bank can fetch them from any member.

Each bank also publishes where the banks it reads publish (`directory/<bank>/...`), and
`discover` adds the publications of current members it did not read yet, from the
directories of the banks it reads: so the founders come to read a bank that joined
later, and a joined bank the members other than the one it joined from.

With this view the agents, the monitor and `poactl` run the same code whether a bank is
alone in a store or reads the others through their publications.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from orchestrator.boundaries import Blob, ConsortiumData, Lease, Publication, Store
from orchestrator.errors import AccessDenied, PoaError
from orchestrator.network.names import (
    GENESIS,
    NETWORK_INFO,
    PUBLISHED_PREFIXES,
    directory_blob,
    is_published,
    is_shared,
    publisher_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

ADOPTED = frozenset({GENESIS, NETWORK_INFO})  # immutable once written: safe to copy


class ConsortiumStore:
    """A `Store`: `own` for `member`'s writes and leases, `others` (member -> its
    published data) for the rest of the consortium, `publication` for what `member`
    publishes (None: a reader, such as the monitor, that publishes nothing), and
    `shared_from` the member trusted for the network's shared blobs."""

    def __init__(
        self,
        member: str,
        own: Store,
        *,
        others: Mapping[str, ConsortiumData],
        publication: Publication | None,
        shared_from: str | None = None,
        urls: Mapping[str, str] | None = None,
        open_data: Callable[[str], ConsortiumData] | None = None,
    ) -> None:
        """`urls` (member -> URL) are where `others` were opened from; `open_data` opens
        a URL that `discover` finds."""
        self.member = member
        self.shared_from = shared_from if shared_from != member else None
        self.own = own
        # Replaced, never changed in place: other threads iterate over it.
        self.others = {m: d for m, d in others.items() if m != member}
        self.urls = {m: u for m, u in (urls or {}).items() if m != member}
        self.publication = publication
        self._open_data = open_data
        self._discovered: frozenset[str] = frozenset()  # read since `discover` found them
        self._warned: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"ConsortiumStore({self.member!r}, own={self.own!r}, others={list(self.others)})"

    # -- blobs -------------------------------------------------------------------------

    def read(self, name: str) -> Blob | None:
        blob = self.own.read(name)
        if blob is not None or not is_published(name):
            return blob
        source = self._source(name)
        data = self.others.get(source) if source is not None else None
        found = self._ask(source, lambda: data.read(name), None) if data is not None else None
        if found is not None and name in ADOPTED:
            self._adopt(found)
        return found

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        publisher = publisher_of(name)
        if publisher is not None and publisher != self.member:
            raise AccessDenied(
                f"{self.member} cannot write {publisher}'s consortium data",
                obj=name,
                hint="a bank writes only its own store; the other banks publish their own",
            )
        etag = self.own.write(name, data, if_match=if_match, if_absent=if_absent, lease=lease)
        if etag is not None:
            self._publish(name, data)
        return etag

    def list(self, prefix: str) -> list[str]:
        names = set(self.own.list(prefix))
        for member, data in list(self.others.items()):
            listed = self._list_of(member, data, prefix)
            names.update(n for n in listed if self._source(n) == member)
        return sorted(names)

    def _list_of(self, member: str, data: ConsortiumData, prefix: str) -> Sequence[str]:
        empty: Sequence[str] = ()
        return self._ask(member, lambda: data.list(prefix), empty)

    def _ask(self, member: str | None, call: Callable[[], T], failed: T) -> T:
        """`call()` on `member`'s publication. A bank this one found by `discover` that
        does not answer (gone, a credential expired) is logged once and skipped; a
        configured bank's errors reach the caller, which retries or reports them."""
        if member not in self._discovered:
            return call()
        try:
            return call()
        except PoaError as e:
            self._warn_once(f"ask:{member}", f"{member}'s consortium data does not answer: {e}")
            return failed

    def _source(self, name: str) -> str | None:
        """The other member whose publication speaks for `name` (None: no one does)."""
        if not is_published(name):
            return None
        if is_shared(name):
            return self.shared_from
        publisher = publisher_of(name)
        return publisher if publisher != self.member else None

    # -- leases: the bank's own ----------------------------------------------------------

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        return self.own.acquire_lease(name, duration, lease_id=lease_id)

    def renew_lease(self, lease: Lease) -> bool:
        return self.own.renew_lease(lease)

    def release_lease(self, lease: Lease) -> None:
        self.own.release_lease(lease)

    def break_lease(self, name: str) -> None:
        self.own.break_lease(name)

    # -- the directory of publications -------------------------------------------------

    def publish_directory(self, urls: Mapping[str, str] | None = None) -> None:
        """Publish where each bank this one reads (or `urls`) publishes its data."""
        for member, url in (self.urls if urls is None else urls).items():
            if "?" in url:
                continue  # a SAS URL is the reader's credential: exchanged out of band
            body = directory_entry(member, url)
            current = self.own.read(directory_blob(self.member, member))
            if current is None or current.data != body:
                self.write(directory_blob(self.member, member), body)

    def discover(self, vouched: Mapping[str, Collection[str]]) -> Sequence[str]:
        """Follow the consortium's membership: start reading each member in `vouched`
        (member -> the banks whose directory entry for it counts) that this bank does not
        read yet, from such an entry; stop reading a discovered bank that is no longer a
        member. The members added. An entry for a founder counts from any founder; for a
        bank that joined later, only from the member that proposed it (`agent.admission`
        computes `vouched`), so no other bank can choose who speaks for it."""
        if self._open_data is None:
            return []
        gone = self._discovered - vouched.keys()
        if gone:
            self.others = {m: d for m, d in self.others.items() if m not in gone}
            self._discovered -= gone
            log.info("%s stops reading %s: no longer members", self.member, ", ".join(gone))
        added = []
        for name in self.list("directory/"):
            member = name.rsplit("/", 1)[-1].removesuffix(".json")
            publisher = publisher_of(name)
            if member == self.member or member in self.others or member not in vouched:
                continue
            if publisher not in vouched[member]:
                continue
            try:
                blob = self.read(name)
                doc = json.loads(blob.data) if blob else {}
                url = str(doc["url"])
                if doc["member"] != member:
                    raise ValueError(f"names member {str(doc['member'])[:40]!r}")
                data = self._open_data(url)
                data.list("members/")  # it answers, and we may read it
            except Exception as e:
                self._warn_once(name, f"skipping the directory entry {name}: {e}")
                continue
            self.others = {**self.others, member: data}
            self.urls = {**self.urls, member: url}
            self._discovered = self._discovered | {member}
            added.append(member)
            log.info("%s now reads %s's consortium data at %s (from %s's directory)",
                     self.member, member, shown_url(url), publisher)  # fmt: skip
        return added

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned = self._warned | {key}
            log.warning("%s: %s", self.member, message)

    # -- publishing --------------------------------------------------------------------

    def republish(self) -> None:
        """Put every consortium-data blob of the own store into the publication again
        (after the publication was lost or moved)."""
        for prefix in PUBLISHED_PREFIXES:
            for name in self.own.list(prefix):
                blob = self.own.read(name)
                if blob is not None:
                    self._publish(name, blob.data)

    def _publish(self, name: str, data: bytes) -> None:
        if self.publication is not None and is_published(name):
            self.publication.put(name, data)

    def _adopt(self, blob: Blob) -> None:
        if self.publication is None:
            return  # a reader keeps nothing
        if self.own.write(blob.name, blob.data, if_absent=True) is not None:
            log.info("adopted %s from the consortium; publishing it as %s", blob.name, self.member)
            self._publish(blob.name, blob.data)


def shown_url(url: str) -> str:
    """`url` as it may be shown or logged: without its query (a SAS URL's signature)."""
    base, query = url.split("?", 1) if "?" in url else (url, "")
    return f"{base}?<signature hidden>" if query else base


def directory_entry(member: str, url: str) -> bytes:
    """A directory blob's body: where `member` publishes its consortium data."""
    return json.dumps({"member": member, "url": url}, sort_keys=True).encode()
