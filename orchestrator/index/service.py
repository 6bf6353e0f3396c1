"""One bank's read index (`poactl index`): follow the node, keep the logs, answer reads.

A follower thread steps `Follower` as long as the index is behind the node's head and
polls every `poll_seconds` once it has caught up; the HTTP threads (`server`) read the
store meanwhile. Which registry to follow comes from the settings or the bank's store
(`network/contracts.json`, asked again until it is recorded, then now and then in case
it is redeployed): an index built for another registry is forgotten and rebuilt. A log
that fails its checks stops the filling where it is (nothing of its block is kept), and
the problem shows in `/v1/status`, `/metrics`, `poactl status` and the monitor; reads
still answer, with the lag growing, so readers turn to the node.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from eth_utils.address import to_checksum_address
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.credit.indexed import MIN_BLOCK_WAIT
from orchestrator.errors import PoaError
from orchestrator.index.checks import log_json
from orchestrator.index.errors import LogRefused
from orchestrator.index.follower import Follower
from orchestrator.index.node import NodeClient
from orchestrator.index.server import IndexServer
from orchestrator.index.settings import IndexFile
from orchestrator.index.store import BlockRef, IndexStore, Registry
from orchestrator.retry import Backoff

log = logging.getLogger(__name__)

REGISTRY_EVERY = 10.0  # seconds between looks at the store for a redeployed registry


class ReadIndex:
    """The index of one bank. `registry_source` says which registry to follow (None: not
    recorded yet); the wiring gives it the settings' or the store's."""

    def __init__(
        self,
        settings: IndexFile,
        *,
        store: IndexStore,
        registry_source: Callable[[], Registry | None],
        node: NodeClient | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.node = node or NodeClient(settings.rpc_urls)
        self._registry_source = registry_source
        self.registry: Registry | None = None
        self.follower: Follower | None = None
        self._next_registry_look = 0.0
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._lock = threading.Lock()
        self.node_head: int | None = None
        self.problem: str | None = None  # a refused log, or why the node did not answer
        self.refused = False  # `problem` is a refused log (not a transient failure)
        self.rebuilding = False
        self.rebuilds = 0  # rebuilds asked for and started since the process started
        self.last_step: float | None = None  # unix time of the last step that answered
        self.backoff = Backoff(f"read index of {settings.member}", base=0.5, cap=10.0)
        self.changed = threading.Condition()  # notified after every step

    # -- filling ------------------------------------------------------------------------
    def _follow_registry(self) -> Registry | None:
        """The registry to follow now; resets the store when it is not the one held."""
        now = time.monotonic()
        if self.registry is None or now >= self._next_registry_look:
            wanted = self._registry_source()
            self._next_registry_look = now + (REGISTRY_EVERY if wanted else 2.0)
            if wanted is not None and wanted != self.registry:
                wanted = Registry(to_checksum_address(wanted.address), wanted.from_block)
                held = self.store.registry()
                if held != wanted:
                    if held is not None:
                        log.warning(
                            "the registry is now %s (block %d), not %s: rebuilding the index",
                            wanted.address, wanted.from_block, held.address,
                        )  # fmt: skip
                    self.store.reset(wanted)
                    self.rebuilding = True
                self.registry = wanted
                self.follower = Follower(self.store, self.node, wanted)
        return self.registry

    def step(self) -> bool:
        """One round of filling; True when there is more to do right away."""
        if self._rebuild.is_set() and self.registry is not None:
            self._rebuild.clear()
            log.info("rebuilding the index from block %d", self.registry.from_block)
            self.store.reset(self.registry)
            with self._lock:
                self.rebuilding = True
                self.rebuilds += 1
        if self._follow_registry() is None or self.follower is None:
            return False
        try:
            result = self.follower.step()
        except LogRefused as e:
            with self._lock:
                self.problem, self.refused = str(e), True
            raise
        with self._lock:
            self.node_head = result.head
            self.last_step = time.time()
            self.problem, self.refused = None, False
            if not result.more:
                self.rebuilding = False
        with self.changed:
            self.changed.notify_all()
        return result.more

    def follow(self) -> None:
        """Fill until asked to stop (the follower thread)."""
        while not self._stop.is_set():
            try:
                more = self.step()
            except PoaError as e:
                with self._lock:
                    self.problem = str(e).replace("\n", " ")
                self.backoff.failed(e)
                self._stop.wait(self.backoff.pause())
                continue
            self.backoff.succeeded()
            if not more:
                self._stop.wait(self.settings.poll_seconds)

    def request_rebuild(self) -> None:
        self._rebuild.set()

    # -- answering ----------------------------------------------------------------------
    def _head_and_tip(self) -> tuple[int | None, BlockRef | None]:
        with self._lock:
            head = self.node_head
        return head, self.store.tip()

    def logs_answer(
        self, subject: bytes, furnisher: bytes | None, min_block: int | None
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, document) of a read: the subject's logs and how current they are."""
        registry = self.registry
        if registry is None:
            return 503, {"error": "the index does not know the registry yet"}
        if min_block is not None:
            self._wait_for(min_block, MIN_BLOCK_WAIT)
        read = self.store.read(subject, furnisher)
        with self._lock:
            head = self.node_head
        if read.tip is None or head is None:
            return 503, {"error": "the index holds no block yet"}
        return 200, {
            "registry": registry.address,
            "block": {"number": read.tip.number, "hash": "0x" + read.tip.hash.hex()},
            "head": max(head, read.tip.number),
            "behind": max(0, head - read.tip.number),
            "logs": [log_json(e, registry.address) for e in read.logs],
        }

    def _wait_for(self, block: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                tip = self.store.tip()
                left = deadline - time.monotonic()
                if (tip is not None and tip.number >= block) or left <= 0:
                    return
                self.changed.wait(left)

    def status(self) -> dict[str, Any]:
        head, tip = self._head_and_tip()
        with self._lock:
            problem, refused, rebuilding, rebuilds, last = (
                self.problem, self.refused, self.rebuilding, self.rebuilds, self.last_step,
            )  # fmt: skip
        registry = self.registry
        return {
            "member": self.settings.member,
            "registry": registry.address if registry else None,
            "from_block": registry.from_block if registry else None,
            "block": None if tip is None else {"number": tip.number, "hash": "0x" + tip.hash.hex()},
            "head": head,
            "behind": None if head is None or tip is None else max(0, head - tip.number),
            "node": self.node.url,
            "problem": problem,
            "refused": refused,
            "rebuilding": rebuilding,
            "rebuilds": rebuilds,
            "last_step_age_seconds": None if last is None else round(time.time() - last, 3),
            **self.store.counts(),
        }

    def metrics(self) -> bytes:
        registry = CollectorRegistry()
        registry.register(_StatusCollector(self.status))
        return generate_latest(registry)

    # -- running ------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("read index: received %s", signal.Signals(signum).name)
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Answer reads and fill until `stop` (then close the node and the store)."""
        host, port = self.settings.host, self.settings.port
        try:
            with IndexServer(host, port, self, tokens_dir=self.settings.tokens_dir):
                log.info("read index of %s serving %s", self.settings.member, self.settings.url)
                self.follow()
        finally:
            self.node.close()
            self.store.close()

    def run(self) -> int:
        """`poactl index`: serve until SIGTERM or SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.serve()
        return 0


class _StatusCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        s = self._status()
        block = s["block"]["number"] if s["block"] else None
        gauges = (
            ("block", "The last block the read index holds", block),
            ("node_head", "The node's head as the read index last saw it", s["head"]),
            ("lag_blocks", "Blocks the read index is behind the node's head", s["behind"]),
            ("logs", "Registry logs the read index holds", s["logs"]),
            ("refused", "1 while a log failed the index's checks", int(s["refused"])),
            ("rebuilding", "1 while the index is rebuilt from the chain", int(s["rebuilding"])),
            ("last_step_age_seconds", "Seconds since the node last answered the index",
             s["last_step_age_seconds"]),
        )  # fmt: skip
        for name, doc, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(f"poactl_index_{name}", doc, value=float(value))
