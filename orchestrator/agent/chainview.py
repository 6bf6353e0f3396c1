"""What an agent knows of the chain beyond its own node: the other nodes' heads, from
their heartbeats (its bank's own and the other banks' published), stamped with this
agent's own time of observation; and the one assessment (`orchestrator.geth.lag`) of
its node against them, for `/health` and for the node's recovery.

geth's own `eth_syncing` says false when its downloader has given up on a peer, so the
heartbeats are what tell a node that stands still while the others move.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orchestrator.boundaries import Store
from orchestrator.geth.lag import Assessment, Head, HeadWatch, assess
from orchestrator.network.heartbeats import NodeKey, Observer, read_heartbeats

log = logging.getLogger(__name__)

FRESH_INTERVALS = 3  # a heartbeat first seen longer ago than this many intervals is stale


class ChainView:
    """The heads an agent sees: `refresh` from the lease loop, `assess` from /health and
    from the node's care (both threads)."""

    def __init__(self, key: NodeKey, *, period: float, heartbeat_seconds: float) -> None:
        self.key, self.period = key, period
        self.fresh_for = FRESH_INTERVALS * heartbeat_seconds
        self.watch = HeadWatch()
        self._observer = Observer()
        self._reported: set[str] = set()

    def refresh(self, store: Store, now: float) -> None:
        """Read every node's heartbeat; a bad one is logged once and skipped."""
        beats, problems = read_heartbeats(store)
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning("%s: ignoring a heartbeat: %s", self.key[1], problem)
        self._observer.observe(beats, now)

    def others(self) -> list[Head]:
        """The other nodes' heads, each stamped when this agent first saw it."""
        return [
            head
            for beat in self._observer.latest()
            if beat.key != self.key and (head := beat.head()) is not None
        ]

    def assess(self, own: Head | None, extra: Sequence[Head], now: float) -> Assessment:
        """This node's head `own` against the others' and `extra` (its sync's highest)."""
        since = self.watch.observe(own.number, now) if own is not None else None
        return assess(
            own, [*self.others(), *extra], now=now, period=self.period,
            fresh_for=self.fresh_for, own_since=since,
        )  # fmt: skip
