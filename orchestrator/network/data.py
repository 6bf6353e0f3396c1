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

from orchestrator.boundaries import Blob, ConsortiumData, Lease, Publication, Store
from orchestrator.errors import AccessDenied
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

    def __repr__(self) -> str:
        return f"ConsortiumStore({self.member!r}, own={self.own!r}, others={list(self.others)})"

    # -- blobs -------------------------------------------------------------------------

    def read(self, name: str) -> Blob | None:
        blob = self.own.read(name)
        if blob is not None or not is_published(name):
            return blob
        source = self._source(name)
        data = self.others.get(source) if source is not None else None
        found = data.read(name) if data is not None else None
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
            names.update(n for n in data.list(prefix) if self._source(n) == member)
        return sorted(names)

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
            body = directory_entry(member, url)
            current = self.own.read(directory_blob(self.member, member))
            if current is None or current.data != body:
                self.write(directory_blob(self.member, member), body)

    def discover(self, members: Collection[str]) -> Sequence[str]:
        """Start reading the publications of `members` (the consortium's members now)
        that this bank does not read yet, as the directories it reads name them; the
        members added. A directory entry is its publisher's word: a wrong one can only
        point at data that the authority rules and the checks on it then refuse."""
        if self._open_data is None:
            return []
        added = []
        for name in self.list("directory/"):
            blob = self.read(name)
            try:
                doc = json.loads(blob.data) if blob else {}
                member, url = str(doc["member"]), str(doc["url"])
            except (ValueError, KeyError, TypeError):
                log.debug("skipping a bad directory entry %s", name)
                continue
            known = member == self.member or member in self.others
            if known or member not in members or not name.endswith(f"/{member}.json"):
                continue
            self.others = {**self.others, member: self._open_data(url)}
            self.urls = {**self.urls, member: url}
            added.append(member)
            log.info("%s now reads %s's consortium data at %s", self.member, member,
                     shown_url(url))  # fmt: skip
        return added

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
