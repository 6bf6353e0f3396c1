"""One bank's monitor (`poactl monitor`): collect, remember, serve.

A collector thread reads, every second or so, the bank's store and the other banks'
published data (every node's heartbeat, the network's members and signers, who holds
which lease: the bank's own from its leases, another bank's as its nodes' latest
heartbeats claim, since leases never leave a bank) and the chain through
the bank's own node (`chain`), into the history (`history`); the HTTP face (`server`)
answers from a snapshot (`view`) computed at most once a second. All of it runs in one
process, with no dependency outside poactl: the page is a static file.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import requests

from orchestrator.boundaries import Store
from orchestrator.config import Consortium
from orchestrator.errors import PoaError
from orchestrator.monitor.chain import ChainFollower
from orchestrator.monitor.history import HOUR_BLOCKS_MARGIN, Heartbeat, History
from orchestrator.monitor.server import MonitorServer
from orchestrator.monitor.settings import MonitorFile
from orchestrator.monitor.view import HOUR, Settings, Snapshot, snapshot
from orchestrator.network.create import read_network
from orchestrator.network.heartbeats import Heartbeat as Published
from orchestrator.network.heartbeats import Observer, read_heartbeats
from orchestrator.network.leases import holder_of
from orchestrator.network.names import identity_lease, leader_lease
from orchestrator.retry import Backoff

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
STORE_EVERY = 5.0  # members, signers and lease holders change rarely
PRUNE_EVERY = 60.0
SNAPSHOT_MAX_AGE = 1.0


class Monitor:
    def __init__(self, settings: MonitorFile, *, store: Store, consortium: Consortium) -> None:
        self.settings = settings
        self.store = store
        self.consortium = consortium
        self.history = History(settings.state_dir / "history.sqlite")
        period = consortium.settings.block_period
        self.chain = ChainFollower(
            settings.rpc_url, self.history, backfill=int(HOUR / period) + HOUR_BLOCKS_MARGIN
        )
        self._view = Settings(
            member=settings.member,
            heartbeat_seconds=consortium.settings.supervision.heartbeat_seconds,
            block_period=period,
            signers={},
        )
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._stop = threading.Event()
        known = self.history.last_heartbeats()  # a restart keeps each one's first sighting
        self._observer = Observer({k: (b.sent, b.at) for k, b in known.items()})
        self._reported: set[str] = set()
        self.backoff = Backoff(f"monitor of {settings.member}", base=POLL_SECONDS, cap=10.0)
        self._index: dict[str, Any] | None = None

    # -- collecting ------------------------------------------------------------------
    def collect(self, *, store_too: bool = True) -> None:
        """One round: heartbeats, (the network and leases), the chain."""
        beats = self.take_heartbeats(time.time())
        if store_too:
            self._view = self._read_network(beats)
        self._index = self._read_index()
        self.chain.poll()

    def _read_index(self) -> dict[str, Any] | None:
        """The bank's read index as its /v1/status says (None: the monitor has none)."""
        url = self.settings.index_url
        if url is None:
            return None
        try:
            doc = requests.get(url.rstrip("/") + "/v1/status", timeout=2).json()
        except (requests.RequestException, ValueError) as e:
            return {"url": url, "problem": f"does not answer ({type(e).__name__})"}
        block = (doc.get("block") or {}).get("number") if isinstance(doc, dict) else None
        keys = ("head", "behind", "logs", "problem", "refused", "rebuilding")
        return {"url": url, "block": block, **{k: doc.get(k) for k in keys}}

    def take_heartbeats(self, now: float) -> list[Heartbeat]:
        """Every node's heartbeat into the history, keyed by its path and stamped with
        the time this monitor first saw it (`now` for a new one): a publisher's clock
        says nothing about freshness."""
        found, problems = read_heartbeats(self.store)
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning("skipping a heartbeat: %s", problem)
        beats = [_kept(b) for b in self._observer.observe(found, now)]
        self.history.add_heartbeats(beats)
        return beats

    def _read_network(self, beats: list[Heartbeat]) -> Settings:
        network = read_network(self.store)
        if network is None:
            return self._view
        fresh = time.time() - 2 * self._view.heartbeat_seconds
        claims = {(b.member, b.signer): b.node for b in beats if b.signer and b.at >= fresh}
        leaders = {b.member: b.node for b in beats if b.leader and b.at >= fresh}
        leases = []
        for member, info in network.members.items():
            names = [("leader", leader_lease(member))] + [
                (f"identity-{i}", identity_lease(member, i)) for i in range(len(info.signers))
            ]
            for label, name in names:
                source = "lease" if member == self.settings.member else "heartbeat"
                if source == "lease":
                    h = holder_of(self.store, name)
                    holder = h.holder if h.leased else None
                elif label == "leader":
                    holder = leaders.get(member)
                else:
                    holder = claims.get((member, info.signers[int(label.split("-")[1])]))
                leases.append(
                    {"member": member, "lease": label, "holder": holder, "source": source}
                )
        return Settings(
            member=self.settings.member,
            heartbeat_seconds=self._view.heartbeat_seconds,
            block_period=self._view.block_period,
            signers={m: list(i.signers) for m, i in network.members.items()},
            leases=leases,
        )

    # -- serving ---------------------------------------------------------------------
    def latest(self) -> Snapshot:
        with self._lock:
            now = time.time()
            if self._latest is None or now - self._latest.at > SNAPSHOT_MAX_AGE:
                polled = self.chain.polled_at
                latest = snapshot(
                    self.history, self._view, now, followed_at=polled if polled else 0.0
                )
                self._latest = dataclasses.replace(latest, index=self._index)
            return self._latest

    # -- running ---------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("monitor: received %s", signal.Signals(signum).name)
        self._stop.set()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        with MonitorServer(self.settings.host, self.settings.port, self.latest):
            log.info("monitor of %s serving %s", self.settings.member, self.settings.url)
            next_store = next_prune = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                try:
                    self.collect(store_too=now >= next_store)
                    if now >= next_store:
                        next_store = now + STORE_EVERY
                    if now >= next_prune:
                        self.history.prune()
                        next_prune = now + PRUNE_EVERY
                except PoaError as e:  # the node or the store did not answer: keep trying
                    self.backoff.failed(e)
                else:
                    self.backoff.succeeded()
                self._stop.wait(self.backoff.pause())
        self.chain.close()
        self.history.close()
        return 0


def _kept(beat: Published) -> Heartbeat:
    """A heartbeat as the history keeps it, stamped when this monitor first saw it."""
    return Heartbeat(
        node=beat.node, at=beat.seen_at, member=beat.member, state=beat.state,
        block=beat.block, hash=beat.hash, peers=beat.peers, sealing=beat.sealing,
        signer=beat.signer, leader=beat.leader, sent=beat.sent, block_time=beat.block_time,
        message=beat.message,
    )  # fmt: skip
