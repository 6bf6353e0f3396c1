"""Ports on this machine: every node of a local consortium needs its own, checked free
before anything starts (a clash fails `up` with the port's name, not a geth crash)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from orchestrator.config import NodeSpec
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
