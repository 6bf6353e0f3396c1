"""A Prometheus configuration for a bank: scrape its monitor, its agents and their
geths, with poactl's alert rules (`alerts.rules.yml`, shipped with the package).

    job poactl-monitor   the monitor's /metrics: consortium-level gauges (alerts read these)
    job poactl-agents    each agent's /metrics: its state, leases, fences, signer latency
    job poactl-geth      each geth's /debug/metrics/prometheus: chain_head_block, txpool_*,
                         p2p_peers, ...
    job poactl-index     the bank's read index's /metrics (poactl_index_*), when given
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

RULES = resources.files("orchestrator.monitor").joinpath("alerts.rules.yml")


def prometheus_config(
    *,
    monitors: Sequence[str],
    agents: Sequence[str],
    geths: Sequence[str],
    rules_file: Path,
    interval_seconds: float = 5.0,
    indexes: Sequence[str] = (),
) -> str:
    """prometheus.yml; targets are host:port."""
    interval = f"{interval_seconds:g}s"

    def job(name: str, targets: Sequence[str], path: str = "/metrics") -> dict[str, object]:
        return {
            "job_name": name,
            "metrics_path": path,
            "static_configs": [{"targets": list(targets)}],
        }

    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            job("poactl-monitor", monitors),
            job("poactl-agents", agents),
            job("poactl-geth", geths, "/debug/metrics/prometheus"),
            *([job("poactl-index", indexes)] if indexes else []),
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
