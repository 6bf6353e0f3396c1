"""The banks' read indexes on one machine: one `poactl index` per bank, started by `up`
(with the monitors, once the network is ready), shown by `status`, stopped by `down`.

Each has `indexes/<bank>/` (`local.services`): its settings, log and pid, and its
database (`index.sqlite`). It follows the chain through the bank's own nodes (the first
one, then the next if it stops answering), finds the registry in the bank's store (it
waits until `up` or `contracts deploy` records one), and, when the consortium has
balancers, asks readers for one of the bank's application tokens, as the balancer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import Consortium, StoreSettings
from orchestrator.credit.indexed import IndexReader
from orchestrator.index.settings import IndexFile
from orchestrator.local import balancers
from orchestrator.local.layout import StateLayout
from orchestrator.local.services import Service, Starting

STATUS_TIMEOUT = 2.0
LAG_PROBLEM_BLOCKS = 5  # `status` calls an index this far behind its node a problem


@dataclass(frozen=True)
class IndexRow:
    member: str
    url: str
    running: bool
    status: dict[str, Any] | None  # the index's /v1/status (None: it did not answer)

    @property
    def problems(self) -> list[str]:
        if not self.running:
            return ["not running"]
        s = self.status
        if s is None:
            return ["does not answer"]
        found = []
        if s.get("refused"):
            found.append(f"refused a log: {s.get('problem')}")
        elif s.get("problem"):
            found.append(str(s["problem"]))
        if (s.get("behind") or 0) > LAG_PROBLEM_BLOCKS and not s.get("rebuilding"):
            found.append(f"{s['behind']} blocks behind its node")
        return found

    def as_dict(self) -> dict[str, Any]:
        s = self.status or {}
        return {
            "member": self.member,
            "url": self.url,
            "running": self.running,
            "block": (s.get("block") or {}).get("number"),
            "head": s.get("head"),
            "behind": s.get("behind"),
            "logs": s.get("logs"),
            "rebuilding": s.get("rebuilding"),
            "registry": s.get("registry"),
            "problems": self.problems,
        }


def service(layout: StateLayout, member: str) -> Service:
    return Service("index", layout.root / "indexes" / member)


def url_of(consortium: Consortium, member: str) -> str:
    return f"http://127.0.0.1:{consortium.index_port(member)}/"


def settings_for(
    layout: StateLayout, consortium: Consortium, member: str, store: StoreSettings
) -> IndexFile:
    balanced = consortium.settings.balancer is not None
    return IndexFile(
        member=member,
        port=consortium.index_port(member),
        rpc_urls=[n.rpc_url for n in consortium.nodes if n.member == member],
        state_dir=service(layout, member).home,
        store=store,
        tokens_dir=balancers.service(layout, member).home / "tokens" if balanced else None,
    )


def start(
    layout: StateLayout, consortium: Consortium, stores: dict[str, StoreSettings]
) -> Starting:
    """Spawn the indexes that do not run, each on its bank's store view in `stores`
    (`Starting.wait` waits until they answer)."""
    pending = []
    for member in consortium.members():
        svc = service(layout, member)
        if svc.pid() is None:
            settings = settings_for(layout, consortium, member, stores[member])
            process = svc.start(settings, settings.url)
            pending.append((svc, process, settings.url + "healthz", member))
    return Starting(pending)


def rows(layout: StateLayout, consortium: Consortium) -> list[IndexRow]:
    out = []
    for member in consortium.members():
        svc = service(layout, member)
        url = svc.url() or url_of(consortium, member)
        running = svc.pid() is not None
        status = None
        if running:
            token = balancers.token(layout, member) if consortium.settings.balancer else None
            status = IndexReader(url, token=token, timeout=STATUS_TIMEOUT).status()
        out.append(IndexRow(member, url, running, status))
    return out


def running_urls(layout: StateLayout, consortium: Consortium) -> dict[str, str]:
    """Bank -> its index's URL, for the banks whose index runs (the credit resolver's)."""
    return {
        m: service(layout, m).url() or url_of(consortium, m)
        for m in consortium.members()
        if service(layout, m).pid() is not None
    }


def stop(layout: StateLayout, consortium: Consortium) -> list[str]:
    return [m for m in consortium.members() if service(layout, m).stop()]
