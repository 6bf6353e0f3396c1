"""What the monitor shows, computed from its history at one moment: the page's panels,
the JSON API's answer and the Prometheus gauges all come from one `Snapshot`.

* nodes: each node's last heartbeat and how old it is (by the monitor's clock, since
  it first saw it) — `reporting` (within two heartbeat intervals), `late` (within
  `SILENT_INTERVALS`), `silent` (older) — and whether it reported in the last 30
  minutes; its state, block, peers and lag behind the chain, judged by the one
  assessment (`orchestrator.geth.lag`) against the other nodes' heartbeats and the
  chain the monitor follows;
* chain: judged by the highest head the monitor can see — the chain it follows through
  its bank's node and every node's fresh heartbeat (a stuck node of its own bank is a
  lagging node, not a stalled chain) — the time since that head's block, and the mean
  block time over the last hour;
* transactions per minute over the last hour (minutes by block timestamp);
* validators: each member's signers, each one's last sealed block and the turns it
  missed in the last hour (a block at height n is in turn for the signer at position
  n mod count of the sorted signers; when another signer seals it out of turn, the
  in-turn signer missed its turn);
* forks: nodes whose newest heartbeats name different blocks at one height, and the
  reorgs the monitor's node went through;
* alerts: the chain stalled, a validator missing its turns, a node silent or behind,
  a node whose agent gave up (FATAL, from its last heartbeat), a fork.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.geth.lag import Assessment, Head, assess
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
    name: str  # ChainStalled, ValidatorMissingTurns, NodeSilent, NodeBehind, NodeFatal, Fork
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


def snapshot(
    history: History,
    settings: Settings,
    now: float | None = None,
    *,
    followed_at: float | None = None,
) -> Snapshot:
    """`followed_at`: when the monitor's node last answered (default `now`; None when it
    never did): its head was seen then, not later."""
    now = time.time() if now is None else now
    followed_at = now if followed_at is None else followed_at
    blocks = history.blocks_since(now - HOUR)
    followed = history.head()
    beats = history.last_heartbeats()
    period, fresh_for = settings.block_period, SILENT_INTERVALS * settings.heartbeat_seconds
    heads = {key: head for key, b in beats.items() if (head := _beat_head(b)) is not None}
    seen = [*heads.values(), *([_block_head(followed, followed_at)] if followed else [])]
    chain = _chain(assess(None, seen, now=now, period=period, fresh_for=fresh_for),
                   followed, beats, blocks)  # fmt: skip
    recent = {b.key for b in history.heartbeats_since(now - REPORTED_WINDOW)}
    nodes = []
    for key, beat in sorted(beats.items()):
        others = [h for k, h in heads.items() if k != key]
        if followed is not None:  # the chain as it was when the heartbeat came, and now
            then = _head_at(blocks, beat.at)
            others += [_block_head(b, b.time) for b in (then, followed) if b is not None]
        lag = assess(heads.get(key), others, now=now, period=period, fresh_for=fresh_for)
        nodes.append(_node(beat, now, settings.heartbeat_seconds, lag, key in recent))
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


def _beat_head(beat: Heartbeat) -> Head | None:
    if beat.block is None:
        return None
    return Head(beat.block, beat.at, beat.block_time, f"{beat.member}/{beat.node}")


def _block_head(block: Block, seen_at: float) -> Head:
    """A block the monitor followed: the chain was at least there at its timestamp, and
    the monitor's node was there at `seen_at` (its head, as last polled)."""
    return Head(block.number, seen_at, float(block.time), "followed")


def _chain(
    judged: Assessment,
    followed: Block | None,
    beats: dict[tuple[str, str], Heartbeat],
    blocks: list[Block],
) -> dict[str, Any]:
    gaps = [  # the genesis is stamped when the network was created: not a block time
        b.time - a.time for a, b in itertools.pairwise(blocks) if b.number == a.number + 1 > 1
    ]
    head_hash = followed.hash if followed and followed.number == judged.top else None
    if head_hash is None:  # a node's heartbeat is ahead of the chain the monitor follows
        head_hash = next((b.hash for b in beats.values() if b.block == judged.top), None)
    return {
        "head": judged.top,
        "head_hash": head_hash,
        "followed_head": followed.number if followed else None,
        "head_age_seconds": judged.head_age,
        "block_time_seconds": sum(gaps) / len(gaps) if gaps else None,
        "blocks_last_hour": len(blocks),
        "stalled": judged.stalled,
        "stall_after_seconds": judged.stall_after,
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
    beat: Heartbeat, now: float, interval: float, judged: Assessment, recent: bool
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
        "lag": judged.behind,
        "lagging": judged.lagging,
        "sealing": beat.sealing,
        "signer": beat.signer,
        "message": beat.message,
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


def _forks(history: History, beats: dict[tuple[str, str], Heartbeat], now: float) -> dict[str, Any]:
    taken = Counter(node for _, node in beats)
    label = {(m, n): n if taken[n] == 1 else f"{m}/{n}" for m, n in beats}  # names collide?
    by_height: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, beat in beats.items():
        if beat.block is not None and beat.hash:
            by_height[beat.block][beat.hash].append(label[key])
    splits = [
        {"height": h, "hashes": {k: sorted(v) for k, v in hashes.items()}}
        for h, hashes in sorted(by_height.items())
        if len(hashes) > 1
    ]
    reorgs = history.reorgs_since(now - HOUR)
    return {
        "heads": {label[k]: {"block": b.block, "hash": b.hash} for k, b in beats.items()},
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
        if n["state"] == "FATAL" and n["reported_last_30_min"]:
            alerts.append(Alert(
                "NodeFatal", n["name"],
                f"{n['name']} ({n['member']}): its agent gave up: {n['message'] or 'FATAL'}",
            ))  # fmt: skip
        if n["status"] == "reporting" and n["lagging"]:
            alerts.append(Alert(
                "NodeBehind", n["name"],
                f"{n['name']} ({n['member']}) is {n['lag']} blocks behind the chain's head",
            ))  # fmt: skip
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
