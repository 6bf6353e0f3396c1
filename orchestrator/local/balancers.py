"""The banks' load balancers on one machine (when the consortium file has `balancer:`):
one `poactl balancer` (HAProxy and the JSON-RPC filter) per bank, started by `up` before
the agents (the nodes peer through them), shown by `status`, stopped last by `down`.

Each has `balancers/<bank>/` (`local.services`): its settings, log, pid, HAProxy's
files, and `tokens/`, where `up` creates the bank's first application token
(`default.token`): the credit CLI, the SDK resolver and the demo present it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.balancer.service import Paths, in_rotation
from orchestrator.balancer.settings import BalancerFile, NodeEntry
from orchestrator.balancer.tokens import create_token, read_token
from orchestrator.boundaries import Secret
from orchestrator.config import Consortium
from orchestrator.local.layout import StateLayout
from orchestrator.local.services import Service, Starting

DEFAULT_APP = "default"


@dataclass(frozen=True)
class BalancerRow:
    member: str
    url: str
    token_file: str
    running: bool
    in_rotation: list[str]  # nodes HAProxy sends traffic to now
    out_of_rotation: list[str]

    def as_dict(self) -> dict[str, object]:
        return {
            "member": self.member, "url": self.url, "token_file": self.token_file,
            "running": self.running, "in_rotation": self.in_rotation,
            "out_of_rotation": self.out_of_rotation,
        }  # fmt: skip


def service(layout: StateLayout, member: str) -> Service:
    return Service("balancer", layout.root / "balancers" / member)


def token_file(layout: StateLayout, member: str) -> Path:
    return service(layout, member).home / "tokens" / f"{DEFAULT_APP}.token"


def token(layout: StateLayout, member: str) -> Secret:
    return Secret(read_token(token_file(layout, member)))


def settings_for(layout: StateLayout, consortium: Consortium, member: str) -> BalancerFile:
    assert consortium.settings.balancer is not None
    public, filter_port, pool_port = consortium.balancer_ports(member)
    peering = consortium.settings.balancer.peering
    home = service(layout, member).home
    return BalancerFile(
        member=member,
        port=public,
        filter_port=filter_port,
        pool_port=pool_port,
        state_dir=home,
        tokens_dir=home / "tokens",
        max_body_kb=consortium.settings.balancer.max_body_kb,
        nodes=[
            NodeEntry(
                name=n.name, http_port=n.http_port, health_port=n.health_port,
                p2p_port=n.p2p_port, peer_port=n.peer_port if peering else None,
            )
            for n in consortium.nodes
            if n.member == member
        ],
    )  # fmt: skip


def url_of(consortium: Consortium, member: str) -> str:
    return f"http://127.0.0.1:{consortium.balancer_ports(member)[0]}/"


def start(layout: StateLayout, consortium: Consortium) -> Starting:
    """Spawn the balancers that do not run, with each bank's default token
    (`Starting.wait` waits until they answer)."""
    pending = []
    for member in consortium.members() if consortium.settings.balancer is not None else []:
        svc = service(layout, member)
        create_token(svc.home / "tokens", DEFAULT_APP)
        if svc.pid() is None:
            settings = settings_for(layout, consortium, member)
            process = svc.start(settings, settings.url)
            pending.append((svc, process, settings.url, member))
    return Starting(pending)


def rows(layout: StateLayout, consortium: Consortium) -> list[BalancerRow]:
    if consortium.settings.balancer is None:
        return []
    out = []
    for member in consortium.members():
        svc = service(layout, member)
        running = svc.pid() is not None
        rotation = (in_rotation(Paths(svc.home).stats) if running else None) or {}
        out.append(BalancerRow(
            member, url_of(consortium, member), str(token_file(layout, member)), running,
            sorted(n for n, up in rotation.items() if up),
            sorted(n for n, up in rotation.items() if not up),
        ))  # fmt: skip
    return out


def stop(layout: StateLayout, consortium: Consortium) -> list[str]:
    return [m for m in consortium.members() if service(layout, m).stop()]
