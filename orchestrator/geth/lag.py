"""How far behind is a node, is the chain stalled: one pure assessment from observations.

The agent's `/health`, `poactl status`, `up`'s readiness, the sealing switch and the
monitor all ask it here, with what each of them can see:

* `own`: the node's head (number, when it was observed, and its block's timestamp);
* `others`: heads of other nodes — each one's answer now (`status`, readiness), their
  heartbeats (`/health`, the monitor), the highest block geth's own sync knows
  (`eth_syncing`), the monitor's followed chain — each with its observation time;
* `now`, the block `period`, and how long a head observation stays fresh.

Observations made at different moments are compared fairly: a head seen `dt` seconds
after the node's own may be up to `ceil(dt / period)` blocks higher on a healthy chain
(Clique seals at most one block a period), so only the rest counts as lag. A node is
*lagging* when that lag is over `MAX_LAG_BLOCKS`, or when it is still at the genesis
while the chain moved (it has never synced, and cannot import the blocks peers
broadcast until geth's next sync round). It is *stuck* when it lags and its head has
not moved for `stuck_after(period)`. The chain is *stalled* when somebody saw the newest
block anyone has seen still being the newest `stall_after(period)` after it was stamped:
one threshold for every reader. (A node stuck on an old block says nothing about the
chain; the quiet between two heartbeats is not a stall; a chain still at its genesis has
no block time yet.)

No I/O, no clock: the same observations give the same answer everywhere (`HeadWatch`
remembers, from the observations fed to it, since when a node's head has not moved).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LAG_BLOCKS = 2  # a node further behind the highest head it knows takes no traffic
STALL_PERIODS = 5  # the chain is stalled when its newest block is this many periods old
STALL_MIN_SECONDS = 10.0  # ... and at least this old
STUCK_PERIODS = 5  # a lagging node whose head did not move for this many periods is stuck
# ... and at least this long: geth syncs with fewer than five peers only every 10 s
# (eth/sync.go forceSyncCycle), so a healthy node may stand still that long.
STUCK_MIN_SECONDS = 15.0


def stall_after(period: float) -> float:
    """Seconds without a new block after which the chain counts as stalled."""
    return max(STALL_MIN_SECONDS, STALL_PERIODS * period)


def stuck_after(period: float) -> float:
    """Seconds a lagging node's head may stay put before it counts as stuck."""
    return max(STUCK_MIN_SECONDS, STUCK_PERIODS * period)


@dataclass(frozen=True)
class Head:
    """One node's head as somebody saw it."""

    number: int
    seen_at: float  # unix time of the observation (a heartbeat's receipt, a call's answer)
    block_time: float | None = None  # the head block's timestamp, when known
    source: str = ""  # who this is (a node's name, "eth_syncing"), for messages
    hash: str | None = None  # the head block's hash, when known
    td: int | None = None  # its total difficulty, when known (geth 1.13 answers it)


@dataclass(frozen=True)
class Assessment:
    own: int | None  # the node's head (None: it did not answer)
    top: int | None  # the highest head among the fresh observations, own included
    behind: int | None  # blocks behind, net of the observations' ages (None: own unknown)
    lagging: bool
    stuck_for: float | None  # seconds the lagging head has not moved, once it is stuck
    head_age: float | None  # seconds since the newest block anyone saw was stamped
    stalled: bool
    stall_after: float

    @property
    def stuck(self) -> bool:
        return self.stuck_for is not None

    @property
    def node_problems(self) -> list[str]:
        """Why this node should take no traffic, as far as its head goes."""
        if self.own is None or not self.lagging:
            return []
        if self.own == 0 and (self.behind or 0) <= MAX_LAG_BLOCKS:
            return [f"still at the genesis while the chain is at block {self.top}"]
        problem = f"{self.behind} blocks behind the head (at {self.own}, the chain at {self.top})"
        if self.stuck_for is not None:
            problem += f"; its head has not moved for {self.stuck_for:.0f}s"
        return [problem]

    @property
    def chain_problems(self) -> list[str]:
        if not self.stalled or self.head_age is None:
            return []
        return [f"chain not advancing: newest block is {self.head_age:.0f}s old"]


def assess(
    own: Head | None,
    others: Iterable[Head],
    *,
    now: float,
    period: float,
    fresh_for: float | None = None,
    own_since: float | None = None,
) -> Assessment:
    """`fresh_for`: observations older than this many seconds are ignored (None: all
    count); `own_since`: since when the node's head has been at `own.number` (None:
    unknown, so never stuck)."""
    fresh = [
        h for h in others if fresh_for is None or now - h.seen_at <= fresh_for
    ]  # a dead node's last heartbeat says nothing about the chain now
    seen = ([own] if own is not None else []) + fresh
    top = max((h.number for h in seen), default=None)
    head_age, stalled, limit = _stall(seen, now, stall_after(period))
    if own is None:
        return Assessment(None, top, None, False, None, head_age, stalled, limit)
    behind = max((_lead(h, own, period) for h in fresh), default=0)
    lagging = behind > MAX_LAG_BLOCKS or (own.number == 0 and (top or 0) > 0)
    stuck_for = None
    if lagging and own_since is not None and now - own_since >= stuck_after(period):
        stuck_for = now - own_since
    return Assessment(own.number, top, behind, lagging, stuck_for, head_age, stalled, limit)


def _stall(seen: list[Head], now: float, limit: float) -> tuple[float | None, bool, float]:
    """Seconds since the newest block anyone saw, and whether the chain has stalled: only
    a sighting of that newest head made more than `limit` after its block was stamped
    proves a stall. A node stuck on an old block says nothing about the chain, and
    neither does the quiet between two heartbeats."""
    # The genesis's timestamp is fixed when the network is made (0 here): not a block time.
    timed = [h for h in seen if h.block_time is not None and h.number > 0]
    if not timed:
        return None, False, limit
    newest = max(timed, key=lambda h: (h.number, h.block_time or 0.0))
    stamped = newest.block_time or 0.0
    sighted = max(h.seen_at for h in timed if h.number >= newest.number)
    moved_on = any(h.number > newest.number for h in seen)  # a higher head, time unknown
    return max(0.0, now - stamped), sighted - stamped > limit and not moved_on, limit


def _lead(other: Head, own: Head, period: float) -> int:
    """How many blocks `other` is ahead of `own`, net of what a healthy chain adds in
    the time between the two observations."""
    allowance = math.ceil(max(0.0, other.seen_at - own.seen_at) / period) if period else 0
    return max(0, other.number - own.number - allowance)


class HeadWatch:
    """Since when a node's head has been at its current number, from the observations
    fed to it (no clock of its own; thread-safe). A gap longer than `max_gap` between
    two observations (the observer itself was paused or frozen) starts the count anew:
    the head may have been moving while nobody looked."""

    def __init__(self, *, max_gap: float = 5.0) -> None:
        self.max_gap = max_gap
        self._number: int | None = None
        self._since = 0.0
        self._last = 0.0
        self._lock = threading.Lock()

    def observe(self, number: int, now: float) -> float:
        """Record the head `number` seen at `now`; since when it has been there."""
        with self._lock:
            if number != self._number or now - self._last > self.max_gap:
                self._number, self._since = number, now
            self._last = now
            return self._since

    def reset(self) -> None:
        with self._lock:
            self._number = None
