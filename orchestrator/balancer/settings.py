"""`balancer.yaml`: what one bank's load balancer needs, validated once.

    member: bank-a
    host: 127.0.0.1          # the balancer's address: the bank's RPC and peering ports
    port: 8645               # the bank's JSON-RPC endpoint (HTTP and WebSocket)
    filter_port: 8665        # poactl's JSON-RPC filter, on loopback
    pool_port: 8666          # the node pool behind the filter, on loopback
    state_dir: /var/lib/poactl/balancer   # haproxy.cfg, the token map, its sockets
    tokens_dir: /etc/poactl/tokens        # one <application>.token file per application
    max_body_kb: 1024
    nodes:
      - {name: bank-a-1, host: 10.1.0.4, http_port: 8545, health_port: 8745,
         p2p_port: 30303, peer_port: 30403}

`poactl up` writes one per bank under `balancers/<bank>/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from orchestrator.config import FilePath, MemberName, Port, Strict, load_settings


class NodeEntry(Strict):
    name: str
    host: str = "127.0.0.1"
    http_port: Port
    health_port: Port
    p2p_port: Port
    peer_port: Port | None = None  # the balancer forwards peers here to p2p_port


class BalancerFile(Strict):
    member: MemberName
    host: str = "127.0.0.1"
    port: Port
    filter_port: Port
    pool_port: Port
    state_dir: FilePath
    tokens_dir: FilePath
    max_body_kb: int = 1024
    # How long a node may take to answer before the request goes to another one (geth
    # answers in milliseconds; a query heavier than this is tried on two more nodes).
    node_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    nodes: list[NodeEntry]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def load_balancer_config(path: Path) -> BalancerFile:
    return load_settings(
        BalancerFile, path, what="the balancer's settings",
        example="orchestrator/balancer/settings.py",
        hint="pass the file with --config (`poactl up` writes balancers/<bank>/balancer.yaml)",
    )  # fmt: skip
