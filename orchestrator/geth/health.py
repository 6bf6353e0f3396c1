"""Health probes: is a node healthy? Asked through web3: HTTP for eth/net, IPC for clique.

A node is healthy when it answers, it has a peer (if it has any to have), and, for a
validator, its address is among the Clique signers. What it saw of the chain (its head,
the head's timestamp, the highest block geth's sync knows) is returned as observations:
whether it lags and whether the chain advances are judged across nodes by the one
assessment in `orchestrator.geth.lag`. Unreachable is a normal answer, not an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3.types import RPCEndpoint

from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import TRANSPORT_ERRORS, ipc_probe
from orchestrator.geth.lag import Head


@dataclass(frozen=True)
class NodeHealth:
    reachable: bool
    block: int | None = None
    peers: int | None = None
    highest: int | None = None  # the highest block geth's sync knows (eth_syncing)
    block_time: int | None = None  # the head block's timestamp
    signers: list[str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.reachable and not self.problems


def check_node(
    rpc_url: str,
    ipc_path: Path,
    *,
    signer: str | None,
    expect_peers: bool,
    timeout: float = 3.0,
) -> NodeHealth:
    try:
        w3 = http_web3(rpc_url, timeout=timeout)
        head = w3.eth.get_block("latest")
        peers = int(w3.net.peer_count)
        syncing = w3.provider.make_request(RPCEndpoint("eth_syncing"), []).get("result")
    except TRANSPORT_ERRORS as e:
        return NodeHealth(reachable=False, problems=[f"RPC unreachable: {type(e).__name__}"])
    block = int(head["number"])
    sync = sync_heads(syncing, time.time())
    signers = clique_signers(ipc_path, timeout=timeout)
    problems = []
    if expect_peers and peers == 0:
        problems.append("no peers")
    if signer is not None:
        if signers is None:
            problems.append("clique signers unknown (IPC unreachable)")
        elif signer.lower() not in (s.lower() for s in signers):
            problems.append("not an authorised signer")
    return NodeHealth(
        reachable=True,
        block=block,
        peers=peers,
        highest=sync[1].number if sync else None,
        block_time=int(head["timestamp"]),
        signers=signers,
        problems=problems,
    )


def sync_heads(syncing: Any, now: float) -> tuple[Head, Head] | None:
    """An `eth_syncing` answer as two observations made `now`: the node's current block
    and the highest block its sync knows of a peer; None when geth answers false. (geth
    1.13 answers an object even when level with its peers, say while indexing.)"""
    if not isinstance(syncing, dict):
        return None
    try:
        current = int(syncing.get("currentBlock", "0x0"), 16)
        highest = int(syncing.get("highestBlock", "0x0"), 16)
    except (TypeError, ValueError):
        return None
    return Head(current, now, source="eth_syncing"), Head(highest, now, source="eth_syncing")


def clique_signers(ipc_path: Path, *, timeout: float = 3.0) -> list[str] | None:
    """clique_getSigners over IPC, or None if the node cannot be asked."""
    result = ipc_probe(ipc_path, "clique_getSigners", [], timeout=timeout)
    return [str(s) for s in result] if isinstance(result, list) else None


def node_problems(
    ipc_path: Path, needs_peers: bool, answered: int | None, running: bool = True
) -> list[str]:
    """Why a node should not take traffic, its lag aside (empty: it may): geth is not
    running or did not answer, or it has no peer while the network has other nodes."""
    if not running:
        return ["geth is not running"]
    if answered is None:
        return ["geth does not answer"]
    if needs_peers:
        peers = ipc_probe(ipc_path, "net_peerCount", [], timeout=1.0)
        if not isinstance(peers, str) or int(peers, 16) == 0:
            return ["no peers"]
    return []
