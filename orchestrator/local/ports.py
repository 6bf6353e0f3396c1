"""Ports on this machine: every node of a local consortium needs its own, checked free
before anything starts (a clash fails `up` with the port's name, not a geth crash)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from orchestrator.config import ConsortiumFile, NodeSpec, Ports
from orchestrator.errors import ConfigError


def check_ports_free(nodes: Sequence[NodeSpec]) -> None:
    for node in nodes:
        for kind, port in node.ports():
            if not port_is_free(port):
                raise ConfigError(
                    f"port clash: {kind} port {port} of node {node.name} is already in use "
                    "on 127.0.0.1",
                    obj=f"ports.{kind}",
                    hint="stop what listens there (another consortium? `poactl down`), "
                    "or change the base port in the consortium file",
                )


def port_is_free(port: int) -> bool:
    """Whether a TCP listener could bind 127.0.0.1:`port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


PORT_STEP = 10  # how far a taken base moves up at a time


def free_bases(settings: ConsortiumFile) -> Ports:
    """Base ports for `settings` that are free on this machine now: each kind keeps its
    default base when every port it needs is free, else moves up by PORT_STEP until they
    are (a second consortium on one machine, such as a bank that joins, needs no
    hand-written `ports:`)."""
    nodes = sum(m.validators + m.spares + m.rpc_nodes for m in settings.members.values())
    banks = len(settings.members)
    spans = {"monitor": banks, "balancer": banks, "index": banks, "balancer_internal": 2 * banks}
    taken: set[int] = set()
    chosen: dict[str, int] = {}
    for kind, field in Ports.model_fields.items():
        base, span = int(field.default), spans.get(kind, nodes)
        while any(p in taken or p > 65535 or not port_is_free(p) for p in range(base, base + span)):
            base += PORT_STEP
        chosen[kind] = base
        taken.update(range(base, base + span))
    return Ports(**chosen)
