"""Free ports for a test's nodes, and a consortium file that uses them."""

from __future__ import annotations

import random

from orchestrator.config import Ports
from orchestrator.local.ports import port_is_free

EPHEMERAL_PORTS_START = 32768


def free_port_bases(count: int, span: int) -> list[int]:
    """`count` base ports, each followed by `span` free ports, ranges not overlapping."""
    bases: list[int] = []
    while len(bases) < count:
        # Below Linux's ephemeral range (32768+), where a client's outgoing connection
        # could take a port between our check and a node's (re)start.
        base = random.randrange(20000, EPHEMERAL_PORTS_START - span)
        taken = any(abs(base - b) < span for b in bases)
        if not taken and all(port_is_free(p) for p in range(base, base + span)):
            bases.append(base)
    return bases


def ports_yaml(span: int) -> str:
    """`ports:` for a consortium of up to `span` nodes: a free range for every kind."""
    kinds = list(Ports.model_fields)
    bases = free_port_bases(len(kinds), span + 1)
    return "ports: {" + ", ".join(f"{k}: {b}" for k, b in zip(kinds, bases, strict=True)) + "}"


def consortium_yaml(
    members: dict[str, int],
    *,
    period: int = 2,
    rpc_nodes: int = 0,
    spares: int = 0,
    extra: str = "",
) -> str:
    """A consortium file on free ports: members maps name to number of validators."""
    span = sum(members.values()) + (rpc_nodes + spares) * len(members)
    lines = [f"block_period: {period}", ports_yaml(span), "members:"]
    lines += [
        f"  {m}: {{validators: {v}, spares: {spares}, rpc_nodes: {rpc_nodes}}}"
        for m, v in members.items()
    ]
    return "\n".join(lines) + "\n" + extra
