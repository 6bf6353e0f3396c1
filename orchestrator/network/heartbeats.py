"""Heartbeats: what each agent writes about its node every few seconds, and how readers
(the other agents, the bank's monitor) take them.

    heartbeats/<member>/<node>.json   {"member", "node", "state", "leader", "signer",
                                       "sealing", "block", "hash", "block_time", "td",
                                       "peers", "time", "message"}

`message` is on an agent's last heartbeat only: why it stopped (FATAL: what failed).

A heartbeat is keyed by the (member, node) of its *path*: two banks may both name a
node `node-1`, and a bank's publication speaks only for its own nodes. A document whose
own `member` or `node` disagrees with its path is refused (reported, never used).

A reader never trusts the publisher's clock for freshness: `Observer` stamps each
heartbeat with the reader's own time when its content first appears, so a dead node
whose last heartbeat is stamped in the future goes silent like any other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.boundaries import Store
from orchestrator.geth.lag import Head
from orchestrator.network.names import heartbeat_blob, node_of

NodeKey = tuple[str, str]  # (member, node)


@dataclass(frozen=True)
class Heartbeat:
    member: str
    node: str
    sent: str  # the publisher's own `time` (ISO 8601): only tells one heartbeat from the next
    state: str
    block: int | None
    hash: str | None
    block_time: int | None  # the head block's timestamp
    td: int | None  # the head block's total difficulty
    peers: int | None
    sealing: bool
    signer: str | None
    leader: bool
    message: str | None = None  # why the agent ended (its last heartbeat)
    seen_at: float = 0.0  # when the reader first saw this heartbeat (its own clock)

    @property
    def key(self) -> NodeKey:
        return self.member, self.node

    def head(self) -> Head | None:
        if self.block is None:
            return None
        source = f"{self.member}/{self.node}"
        return Head(self.block, self.seen_at, self.block_time, source, self.hash, self.td)


def write_heartbeat(store: Store, body: Mapping[str, Any]) -> None:
    """Publish `body` (with its `member` and `node`) as that node's heartbeat."""
    name = heartbeat_blob(str(body["member"]), str(body["node"]))
    store.write(name, json.dumps(dict(body), sort_keys=True).encode())


def read_heartbeats(store: Store) -> tuple[list[Heartbeat], list[str]]:
    """Every well-formed heartbeat (unstamped: `seen_at` 0), and a problem line for each
    blob that is not one or that names another node than its path."""
    beats: list[Heartbeat] = []
    problems: list[str] = []
    for name in store.list("heartbeats/"):
        key = node_of(name, "heartbeats")
        if key is None:
            problems.append(f"{name}: not a heartbeat's name (heartbeats/<member>/<node>.json)")
            continue
        blob = store.read(name)
        if blob is None:
            continue
        try:
            beat = _parse(json.loads(blob.data))
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{name}: not a heartbeat ({type(e).__name__}: {e})")
            continue
        if beat.key != key:
            problems.append(
                f"{name}: names {beat.member[:40]!r}/{beat.node[:40]!r}, not its path's "
                f"{key[0]}/{key[1]}"
            )
            continue
        beats.append(beat)
    return beats, problems


def _parse(doc: Any) -> Heartbeat:
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    return Heartbeat(
        member=str(doc["member"]), node=str(doc["node"]), sent=str(doc["time"]),
        state=str(doc["state"]), block=_int(doc.get("block")), hash=_str(doc.get("hash")),
        block_time=_int(doc.get("block_time")), td=_int(doc.get("td")),
        peers=_int(doc.get("peers")),
        sealing=bool(doc["sealing"]), signer=_str(doc.get("signer")),
        leader=bool(doc.get("leader")), message=_str(doc.get("message")),
    )  # fmt: skip


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{value!r} is not a non-negative integer")
    return value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class Observer:
    """Stamps heartbeats with this reader's time of observation: a heartbeat keeps the
    time it was first seen until its publisher sends a new one. Thread-safe."""

    def __init__(self, known: Mapping[NodeKey, tuple[str, float]] | None = None) -> None:
        """`known`: (member, node) -> (sent, seen_at) remembered from an earlier run."""
        self._seen: dict[NodeKey, tuple[str, float]] = dict(known or {})
        self._lock = threading.Lock()
        self._latest: dict[NodeKey, Heartbeat] = {}

    def observe(self, beats: list[Heartbeat], now: float) -> list[Heartbeat]:
        """`beats` stamped; those not seen before (by `sent`) get `now`."""
        stamped = []
        with self._lock:
            for beat in beats:
                sent, seen_at = self._seen.get(beat.key, ("", now))
                if sent != beat.sent:
                    seen_at = now
                self._seen[beat.key] = (beat.sent, seen_at)
                stamped.append(replace(beat, seen_at=seen_at))
            self._latest = {b.key: b for b in stamped}
        return stamped

    def latest(self) -> list[Heartbeat]:
        """The last round's heartbeats, stamped."""
        with self._lock:
            return list(self._latest.values())
