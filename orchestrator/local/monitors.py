"""The banks' monitors on one machine: one `poactl monitor` per bank, started by `up`
(once the network is ready), shown by `status`, stopped by `down`.

Each has `monitors/<bank>/` (`local.services`): its settings, log and pid, and its
history (`history.sqlite`). It reads the bank's store and follows the chain through the
bank's first node, as a bank's monitor VM would.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import Consortium, StoreSettings
from orchestrator.local.layout import StateLayout
from orchestrator.local.services import Service, Starting
from orchestrator.monitor.settings import MonitorFile


@dataclass(frozen=True)
class MonitorRow:
    member: str
    url: str
    running: bool

    def as_dict(self) -> dict[str, object]:
        return {"member": self.member, "url": self.url, "running": self.running}


def service(layout: StateLayout, member: str) -> Service:
    return Service("monitor", layout.root / "monitors" / member)


def settings_for(
    layout: StateLayout, consortium: Consortium, member: str, store: StoreSettings, rpc_url: str
) -> MonitorFile:
    return MonitorFile(
        member=member,
        port=consortium.monitor_port(member),
        rpc_url=rpc_url,
        state_dir=service(layout, member).home,
        consortium_file=layout.config,
        store=store,
        index_url=f"http://127.0.0.1:{consortium.index_port(member)}/",  # `local.indexes`
    )


def start(
    layout: StateLayout,
    consortium: Consortium,
    stores: dict[str, StoreSettings],
    rpc_urls: dict[str, str],
) -> Starting:
    """Spawn the monitors that do not run, each on its bank's store view in `stores` and
    its bank's endpoint in `rpc_urls`
    (`Starting.wait` waits until they serve). A monitor needs no running network: it
    keeps trying until the network and the node answer."""
    pending = []
    for member in consortium.members():
        svc = service(layout, member)
        if svc.pid() is None:
            settings = settings_for(layout, consortium, member, stores[member], rpc_urls[member])
            process = svc.start(settings, settings.url)
            pending.append((svc, process, settings.url + "healthz", member))
    return Starting(pending)


def rows(layout: StateLayout, consortium: Consortium) -> list[MonitorRow]:
    out = []
    for member in consortium.members():
        svc = service(layout, member)
        url = svc.url() or f"http://127.0.0.1:{consortium.monitor_port(member)}/"
        out.append(MonitorRow(member, url, svc.pid() is not None))
    return out


def stop(layout: StateLayout, consortium: Consortium) -> list[str]:
    return [m for m in consortium.members() if service(layout, m).stop()]
