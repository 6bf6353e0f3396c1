"""`agent.yaml`: what one agent (one VM) needs to know, validated once.

An agent belongs to one member, has a unique node name, a state directory for its geth
datadir, status and logs, and three backends: where the consortium's blobs and leases
live (`store`), where its bank's secrets live (`vault`), and how geth runs (`runtime`).
The shipped `orchestrator/agent.example.yaml` documents every key. `poactl up` writes
one such file per local agent; the VM extension (`scripts/install_agent.sh`) writes
`/etc/poactl/agent.yaml`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from orchestrator.boundaries import LEASE_MAX_SECONDS, LEASE_MIN_SECONDS
from orchestrator.config import (
    FilePath,
    MemberName,
    Port,
    RuntimeSettings,
    StoreSettings,
    Strict,
    VaultSettings,
    load_settings,
)

NodeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,40}[a-z0-9]$")]


class AgentPorts(Strict):
    p2p: Port
    http: Port
    authrpc: Port
    health: Port  # /health and /metrics
    metrics: Port | None = None  # geth's own Prometheus metrics; none: geth serves none


class AgentFile(Strict):
    """The schema of agent.yaml."""

    member: MemberName
    node: NodeName
    # validator: competes for one of the member's validator identities (a spare is a
    # validator agent that found every identity taken). rpc: never seals.
    role: Literal["validator", "rpc"] = "validator"
    state_dir: FilePath
    consortium_file: FilePath  # the consortium's agreed settings (the same file at every bank)
    host: str = "127.0.0.1"  # the address geth's p2p listens on and advertises to peers
    # Where other members reach this node's p2p instead (its bank's balancer, host:port,
    # like an Azure Load Balancer NAT rule); the enode the bank publishes points there.
    advertise: str | None = None
    peer_network: str = "127.0.0.0/8"  # CIDR of the members' nodes (geth --netrestrict)
    rpc_host: str = "127.0.0.1"  # where JSON-RPC listens (for the member's balancer)
    # Where /health and /metrics listen [default: host]; 0.0.0.0 in Azure, where the
    # Application Health extension probes localhost and the load balancer the VM's address.
    health_host: str | None = None
    ports: AgentPorts
    lease_seconds: Annotated[int, Field(ge=LEASE_MIN_SECONDS, le=LEASE_MAX_SECONDS)] = 15
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # How long a new agent may go without reaching the store and vault (or without the
    # network appearing) before it gives up with a message instead of retrying forever.
    boot_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    store: StoreSettings
    vault: VaultSettings
    runtime: RuntimeSettings = RuntimeSettings()

    @model_validator(mode="after")
    def _addresses(self) -> AgentFile:
        try:
            ipaddress.ip_network(self.peer_network, strict=False)
            ipaddress.ip_address(self.rpc_host)
            ipaddress.ip_address(self.host)
            if self.health_host is not None:
                ipaddress.ip_address(self.health_host)
            if self.advertise is not None:
                address, _, port = self.advertise.rpartition(":")
                ipaddress.ip_address(address)
                if not 1 <= int(port) <= 65535:
                    raise ValueError(f"port {port} is out of range")
        except ValueError as e:
            raise ValueError(
                f"{e}: host and rpc_host are IP addresses, advertise is ip:port, "
                "peer_network a CIDR"
            ) from e
        return self


def load_agent_config(path: Path) -> AgentFile:
    return load_settings(
        AgentFile, path, what="the agent file", example="orchestrator/agent.example.yaml",
        hint="pass an existing file with --config (the VM extension writes "
        "/etc/poactl/agent.yaml; orchestrator/agent.example.yaml documents it)",
    )  # fmt: skip
