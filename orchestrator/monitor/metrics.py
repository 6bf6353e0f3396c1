"""The monitor's consortium-level Prometheus metrics, rendered from one `Snapshot`.

Names start with `poactl_monitor_`; the alert rules (`alerts.rules.yml`) and the
Grafana dashboard (`grafana-dashboard.json`) use exactly these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.monitor.view import Snapshot

STATUSES = ("reporting", "late", "silent")
ALERTS = ("ChainStalled", "ValidatorMissingTurns", "NodeSilent", "NodeBehind", "NodeFatal", "Fork")


class SnapshotCollector(Collector):
    def __init__(self, latest: Callable[[], Snapshot]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        s = self._latest()
        chain = s.chain

        def gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
            if value is not None:
                yield GaugeMetricFamily(f"poactl_monitor_{name}", doc, value=value)

        yield from gauge(
            "chain_head",
            "Highest head the monitor sees (its node's chain, every node's heartbeat)",
            chain["head"],
        )
        yield from gauge(
            "head_age_seconds",
            "Seconds since the newest block the monitor sees was stamped",
            chain["head_age_seconds"],
        )
        yield from gauge(
            "block_time_seconds", "Mean block time over the last hour", chain["block_time_seconds"]
        )
        complete = s.tx_per_minute[-2]["txs"] if len(s.tx_per_minute) > 1 else None
        yield from gauge("tx_per_minute", "Transactions in the last complete minute", complete)
        age = GaugeMetricFamily(
            "poactl_monitor_heartbeat_age_seconds", "Age of each node's last heartbeat",
            labels=["node", "member"],
        )  # fmt: skip
        status = GaugeMetricFamily(
            "poactl_monitor_node_status", "1 for each node's heartbeat status",
            labels=["node", "member", "status"],
        )  # fmt: skip
        lag = GaugeMetricFamily(
            "poactl_monitor_node_lag_blocks", "Blocks a node is behind the chain's head",
            labels=["node", "member"],
        )  # fmt: skip
        for n in s.nodes:
            age.add_metric([n["name"], n["member"]], n["age_seconds"])
            for st in STATUSES:
                status.add_metric([n["name"], n["member"], st], 1.0 if n["status"] == st else 0.0)
            if n["lag"] is not None:
                lag.add_metric([n["name"], n["member"]], n["lag"])
        yield from (age, status, lag)
        missed = GaugeMetricFamily(
            "poactl_monitor_missed_turns", "Turns a validator missed in the last 10 minutes",
            labels=["validator", "member"],
        )  # fmt: skip
        last = GaugeMetricFamily(
            "poactl_monitor_last_sealed_block", "The last block each validator sealed",
            labels=["validator", "member"],
        )  # fmt: skip
        for v in s.validators:
            missed.add_metric([v["address"], v["member"]], v["missed_turns_last_10_min"])
            if v["last_sealed_block"] is not None:
                last.add_metric([v["address"], v["member"]], v["last_sealed_block"])
        yield from (missed, last)
        yield from gauge(
            "fork_heights",
            "Heights where nodes' newest blocks differ",
            len(s.forks["split_heights"]),
        )
        yield from gauge(
            "reorg_depth_max", "Deepest reorg of the last hour", s.forks["deepest_reorg_last_hour"]
        )
        index = s.index or {}
        index_lag, index_held = index.get("behind"), index.get("block")
        yield from gauge("index_lag_blocks", "Blocks the bank's read index is behind", index_lag)
        yield from gauge("index_block", "The last block the bank's read index holds", index_held)
        if index:
            refused = 1.0 if index.get("refused") else 0.0
            yield from gauge("index_refused", "1 while the read index refuses a log", refused)
        alerts = GaugeMetricFamily(
            "poactl_monitor_alert", "1 while the monitor raises this alert", labels=["alert"]
        )
        active = {a.name for a in s.alerts}
        for name in ALERTS:
            alerts.add_metric([name], 1.0 if name in active else 0.0)
        yield alerts


def exposition(latest: Callable[[], Snapshot]) -> bytes:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(latest))
    return generate_latest(registry)
