"""What the monitor shows, computed from its history at one moment: the page's panels,
the JSON API's answer and the Prometheus gauges all come from one `Snapshot`.

* nodes: each node's last heartbeat and how old it is — `reporting` (within two
  heartbeat intervals), `late` (within `SILENT_INTERVALS`), `silent` (older) — and
  whether it reported in the last 30 minutes; its state, block, peers and lag behind
  the chain's head as it was when the heartbeat was written;
* chain: head, time since its block, mean block time over the last hour;
* transactions per minute over the last hour (minutes by block timestamp);
* validators: each member's signers, each one's last sealed block and the turns it
  missed in the last hour (a block at height n is in turn for the signer at position
  n mod count of the sorted signers; when another signer seals it out of turn, the
  in-turn signer missed its turn);
* forks: nodes whose newest heartbeats name different blocks at one height, and the
  reorgs the monitor's node went through;
* alerts: the chain stalled, a validator missing its turns, a node silent, a fork.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.monitor.history import Block, Heartbeat, History

LATE_INTERVALS = 2  # a heartbeat older than this many intervals is late
SILENT_INTERVALS = 5  # ... and older than this many, silent
REPORTED_WINDOW = 30 * 60
HOUR = 3600
MISSED_TURNS_ALERT = 3  # missed turns in ALERT_WINDOW that raise an alert
ALERT_WINDOW = 10 * 60


@dataclass(frozen=True)
class Settings:
    member: str  # the bank this monitor belongs to
    heartbeat_seconds: float
    block_period: int
    signers: dict[str, list[str]]  # member -> its validators' addresses (decided)
    leases: list[dict[str, Any]] = field(default_factory=list)  # member, lease, holder


@dataclass(frozen=True)
class Alert:
    name: str  # ChainStalled, ValidatorMissingTurns, NodeSilent, Fork
    subject: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    at: float
    member: str
    chain: dict[str, Any]
    tx_per_minute: list[dict[str, int]]
    nodes: list[dict[str, Any]]
    validators: list[dict[str, Any]]
    leases: list[dict[str, Any]]
    forks: dict[str, Any]
    alerts: list[Alert]
    index: dict[str, Any] | None = None  # the bank's read index: block, lag, problem

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["alerts"] = [asdict(a) for a in self.alerts]
        return out


def node_status(age: float, interval: float) -> str:
    if age <= LATE_INTERVALS * interval:
        return "reporting"
    return "late" if age <= SILENT_INTERVALS * interval else "silent"


def in_turn_signer(number: int, signers: list[str]) -> str:
    """Clique's in-turn signer at `number`: signers sorted by their bytes."""
    ordered = sorted(signers, key=lambda a: bytes.fromhex(a.removeprefix("0x")))
    return ordered[number % len(ordered)]


def snapshot(history: History, settings: Settings, now: float | None = None) -> Snapshot:
    now = time.time() if now is None else now
    blocks = history.blocks_since(now - HOUR)
    head = history.head()
    chain = _chain(head, blocks, settings, now)
    beats = history.last_heartbeats()
    recent = {b.node for b in history.heartbeats_since(now - REPORTED_WINDOW)}
    nodes = [
        _node(beat, now, settings.heartbeat_seconds, _head_at(blocks, beat.at), beat.node in recent)
        for beat in sorted(beats.values(), key=lambda b: b.node)
    ]
    validators = _validators(blocks, settings, now)
    forks = _forks(history, beats, now)
    alerts = _alerts(chain, nodes, validators, forks)
    return Snapshot(
        at=now,
        member=settings.member,
        chain=chain,
        tx_per_minute=_tx_per_minute(blocks, now),
        nodes=nodes,
        validators=validators,
        leases=settings.leases,
        forks=forks,
        alerts=alerts,
    )


def _chain(
    head: Block | None, blocks: list[Block], settings: Settings, now: float
) -> dict[str, Any]:
    gaps = [  # the genesis is stamped when the network was created: not a block time
        b.time - a.time for a, b in itertools.pairwise(blocks) if b.number == a.number + 1 > 1
    ]
    age = now - head.time if head else None
    stall_after = max(5.0 * settings.block_period, 10.0)
    return {
        "head": head.number if head else None,
        "head_hash": head.hash if head else None,
        "head_age_seconds": age,
        "block_time_seconds": sum(gaps) / len(gaps) if gaps else None,
        "blocks_last_hour": len(blocks),
        "stalled": age is not None and age > stall_after,
        "stall_after_seconds": stall_after,
    }


def _head_at(blocks: list[Block], moment: float) -> Block | None:
    """The newest block stamped no later than `moment` (a heartbeat's lag is measured
    against the head as it was then, not as it is now)."""
    i = bisect.bisect_right([b.time for b in blocks], moment)
    return blocks[i - 1] if i else None


def _tx_per_minute(blocks: list[Block], now: float) -> list[dict[str, int]]:
    """The last 60 whole minutes and the current one, oldest first, zeros included."""
    this_minute = int(now // 60) * 60
    counts: Counter[int] = Counter()
    for b in blocks:
        counts[b.time // 60 * 60] += b.txs
    return [
        {"minute": m, "txs": counts.get(m, 0)}
        for m in range(this_minute - 60 * 60, this_minute + 60, 60)
    ]


def _node(
    beat: Heartbeat, now: float, interval: float, head: Block | None, recent: bool
) -> dict[str, Any]:
    age = now - beat.at
    return {
        "name": beat.node,
        "member": beat.member,
        "last_heartbeat": beat.at,
        "age_seconds": age,
        "status": node_status(age, interval),
        "reported_last_30_min": recent,
        "state": beat.state,
        "block": beat.block,
        "hash": beat.hash,
        "peers": beat.peers,
        "lag": max(0, head.number - beat.block) if head and beat.block is not None else None,
        "sealing": beat.sealing,
        "signer": beat.signer,
    }


def _validators(blocks: list[Block], settings: Settings, now: float) -> list[dict[str, Any]]:
    everyone = [a for signers in settings.signers.values() for a in signers]
    last: dict[str, int] = {}
    missed: Counter[str] = Counter()
    missed_recent: Counter[str] = Counter()
    for b in blocks:
        if b.signer:
            last[b.signer.lower()] = b.number
        if everyone and not b.in_turn:
            due = in_turn_signer(b.number, everyone).lower()
            if b.signer is None or due != b.signer.lower():
                missed[due] += 1
                if b.time >= now - ALERT_WINDOW:
                    missed_recent[due] += 1
    return [
        {
            "member": member,
            "address": address,
            "last_sealed_block": last.get(address.lower()),
            "missed_turns_last_hour": missed[address.lower()],
            "missed_turns_last_10_min": missed_recent[address.lower()],
        }
        for member, signers in settings.signers.items()
        for address in signers
    ]


def _forks(history: History, beats: dict[str, Heartbeat], now: float) -> dict[str, Any]:
    by_height: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for beat in beats.values():
        if beat.block is not None and beat.hash:
            by_height[beat.block][beat.hash].append(beat.node)
    splits = [
        {"height": h, "hashes": {k: sorted(v) for k, v in hashes.items()}}
        for h, hashes in sorted(by_height.items())
        if len(hashes) > 1
    ]
    reorgs = history.reorgs_since(now - HOUR)
    return {
        "heads": {beat.node: {"block": beat.block, "hash": beat.hash} for beat in beats.values()},
        "split_heights": splits,
        "reorgs": [asdict(r) for r in reorgs],
        "deepest_reorg_last_hour": max((r.depth for r in reorgs), default=0),
        "recent_reorgs": [asdict(r) for r in reorgs if r.at >= now - ALERT_WINDOW],
    }


def _alerts(
    chain: dict[str, Any],
    nodes: list[dict[str, Any]],
    validators: list[dict[str, Any]],
    forks: dict[str, Any],
) -> list[Alert]:
    alerts = []
    if chain["stalled"]:
        alerts.append(Alert(
            "ChainStalled", "chain",
            f"no new block for {chain['head_age_seconds']:.0f} s (head {chain['head']})",
        ))  # fmt: skip
    for v in validators:
        if v["missed_turns_last_10_min"] >= MISSED_TURNS_ALERT:
            alerts.append(Alert(
                "ValidatorMissingTurns", v["address"],
                f"{v['member']}'s validator {v['address']} missed "
                f"{v['missed_turns_last_10_min']} turns in 10 minutes",
            ))  # fmt: skip
    for n in nodes:
        if n["status"] == "silent" and n["reported_last_30_min"]:
            alerts.append(Alert(
                "NodeSilent", n["name"],
                f"{n['name']} sent no heartbeat for {n['age_seconds']:.0f} s",
            ))  # fmt: skip
    for split in forks["split_heights"]:
        alerts.append(Alert(
            "Fork", f"height {split['height']}",
            f"nodes disagree on block {split['height']}: "
            + "; ".join(f"{h[:10]}… on {', '.join(ns)}" for h, ns in split["hashes"].items()),
        ))  # fmt: skip
    for reorg in forks["recent_reorgs"]:
        if reorg["depth"] > 1:
            alerts.append(Alert(
                "Fork", f"reorg at {reorg['height']}",
                f"a reorg replaced {reorg['depth']} blocks from height {reorg['height']}",
            ))  # fmt: skip
    return alerts
