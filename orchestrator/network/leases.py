"""Holding one blob lease: acquire, renew on schedule, and know when to fence.

The store counts a lease's duration from when *it* received the last acquire or renew;
we count from when we *sent* it, which is earlier, so our view of the expiry is never
later than the store's. `fence_at` is that expiry minus a margin long enough for geth
to finish (or drop) a block it signed before the fence: the agent stops sealing at
`fence_at` unless a renewal got through, so the lease cannot expire, and a spare cannot
take the identity, while this node could still seal.

A renewal sent a whole lease duration or more after the last one that got through is
not sent: the lease has expired meanwhile (the stores would still renew an expired
lease nobody took, but a holder paused past its expiry must not carry on as if nothing
happened: somebody may have held the lease and signed in between). It counts as lost.

An identity's lease blob also carries the identity's high-water mark: the highest block
number any holder signed with it (`signed`). The signer records a new height there,
under the lease, before it returns the signature (`record_height`); a new holder reads
it when it takes the lease (`inherited_height`) and never signs at or below it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.boundaries import Lease, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HolderInfo:
    holder: str | None  # the agent named in the lease blob
    leased: bool  # a lease is held right now
    since: str | None = None


class LeaseKeeper:
    """One lease this agent wants to hold; the holder's name is written into the blob."""

    def __init__(self, store: Store, name: str, *, duration: int, holder: str, margin: float):
        self.store = store
        self.name = name
        self.duration = duration
        self.holder = holder
        self.margin = margin
        self.lease: Lease | None = None
        self.renewed_at = 0.0  # monotonic time the last successful acquire/renew was sent
        self.renewed_wall = 0.0  # the same moment on the wall clock (for status files)
        self.inherited_height = -1  # the blob's `signed` mark when we took the lease
        self.signed_height = -1  # the mark as this holder last wrote it
        self.lost_why = ""  # why the last renewal failed, for the agent's message
        self._since = ""

    @property
    def held(self) -> bool:
        return self.lease is not None

    @property
    def fence_at(self) -> float:
        return self.renewed_at + self.duration - self.margin

    @property
    def expires_at(self) -> float:
        """When the lease expires at the latest (monotonic), counted from our last send."""
        return self.renewed_at + self.duration

    def proven(self) -> bool:
        """Held, and not yet at the moment the agent fences: a signature may leave."""
        return self.lease is not None and time.monotonic() < self.fence_at

    @property
    def renew_due(self) -> bool:
        return self.held and time.monotonic() >= self.renewed_at + self.duration / 3

    def try_acquire(self) -> bool:
        """Take the lease if it is free; False when someone else holds it."""
        sent, wall = time.monotonic(), time.time()
        lease = self.store.acquire_lease(self.name, self.duration)
        if lease is None:
            return False
        self.lease, self.renewed_at, self.renewed_wall = lease, sent, wall
        # Nobody else can write the blob while we hold its lease: its mark is final.
        self.inherited_height = self.signed_height = _signed_mark(self.store, self.name)
        self._since = datetime.now(UTC).isoformat(timespec="seconds")
        if not self._write(self.inherited_height):
            log.warning("%s: lease %s was lost right after acquiring it", self.holder, self.name)
            self.lease = None
            return False
        log.info("%s: acquired lease %s", self.holder, self.name)
        return True

    def record_height(self, height: int) -> bool:
        """Record `height` as signed with this identity, under the lease (the write only
        the lease's holder can make); False when the lease is lost."""
        if self.lease is None or not self._write(max(height, self.signed_height)):
            return False
        self.signed_height = max(height, self.signed_height)
        return True

    def lower_height(self, head: int) -> bool:
        """Lower the mark to `head` when this holder's signatures above it can no longer
        be published (`fencing.settle_signatures`); True when it was lowered."""
        if self.lease is None or head >= self.signed_height or head < self.inherited_height:
            return False
        if not self._write(head):
            return False
        self.signed_height = head
        return True

    def _write(self, signed: int) -> bool:
        body = {"holder": self.holder, "since": self._since, "signed": signed}
        return self.store.write(self.name, json.dumps(body).encode(), lease=self.lease) is not None

    def renew(self) -> bool:
        """Renew; False (and the lease forgotten) when it was lost: broken, taken, or
        expired before this renewal was sent, or forgotten (fenced) meanwhile."""
        lease = self.lease
        if lease is None:  # fenced while the caller got here: the fence stands
            self.lost_why = "it was given up (fenced) before the renewal"
            return False
        sent, wall = time.monotonic(), time.time()
        late = sent - self.renewed_at
        if late >= self.duration:
            self.lost_why = (
                f"the renewal came {late:.1f}s after the last one, longer than the lease's "
                f"{self.duration}s: it expired {late - self.duration:.1f}s ago"
            )
            log.warning("%s: lease %s is lost: %s", self.holder, self.name, self.lost_why)
            self.lease = None
            return False
        if self.store.renew_lease(lease):
            if self.lease is not lease:  # fenced while the store answered
                self.lost_why = "it was given up (fenced) while the renewal was under way"
                return False
            self.renewed_at, self.renewed_wall = sent, wall
            return True
        self.lost_why = "the store refused the renewal (the lease was broken, or expired and taken)"
        log.warning("%s: lease %s was lost (broken, or expired and taken)", self.holder, self.name)
        self.lease = None
        return False

    def forget(self) -> None:
        """Stop counting on the lease (after a fence) without asking the store."""
        self.lease = None

    def release(self) -> None:
        if self.lease is not None:
            self.store.release_lease(self.lease)
            log.info("%s: released lease %s", self.holder, self.name)
            self.lease = None


def _signed_mark(store: Store, name: str) -> int:
    """The highest height signed under the lease `name` (-1: none recorded)."""
    blob = store.read(name)
    try:
        doc = json.loads(blob.data) if blob is not None and blob.data else {}
    except ValueError:
        doc = {}
    signed = doc.get("signed") if isinstance(doc, dict) else None
    return signed if isinstance(signed, int) else -1


def holder_of(store: Store, name: str) -> HolderInfo:
    """Who holds the lease `name`, as the holder wrote it into the blob."""
    blob = store.read(name)
    if blob is None:
        return HolderInfo(None, leased=False)
    try:
        doc = json.loads(blob.data) if blob.data else {}
    except ValueError:
        doc = {}
    return HolderInfo(doc.get("holder"), leased=blob.leased, since=doc.get("since"))
