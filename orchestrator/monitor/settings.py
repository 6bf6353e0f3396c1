"""`monitor.yaml`: what one bank's monitor needs, validated once.

    member: bank-a                   # the bank it belongs to
    host: 127.0.0.1                  # where its page, JSON API and /metrics listen
    port: 8845
    rpc_url: http://127.0.0.1:8545   # the bank's own node (or balancer): the chain
    state_dir: /var/lib/poactl/monitor   # its history (history.sqlite)
    consortium_file: /etc/poactl/consortium.yaml   # block period, heartbeat interval
    store: {kind: local, path: ...}  # the bank's store: heartbeats, leases, network
    index_url: http://127.0.0.1:8945/   # the bank's read index, whose lag it shows (optional)

`poactl up` writes one per bank under `monitors/<bank>/`; on a VM the same keys go in
`/etc/poactl/monitor.yaml`.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import FilePath, MemberName, Port, StoreSettings, Strict, load_settings


class MonitorFile(Strict):
    member: MemberName
    host: str = "127.0.0.1"
    port: Port
    rpc_url: str
    state_dir: FilePath
    consortium_file: FilePath
    store: StoreSettings
    index_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def load_monitor_config(path: Path) -> MonitorFile:
    return load_settings(
        MonitorFile, path, what="the monitor's settings",
        example="orchestrator/monitor/settings.py",
        hint="pass the file with --config (`poactl up` writes monitors/<bank>/monitor.yaml)",
    )  # fmt: skip
