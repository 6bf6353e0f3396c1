"""Health probes: is a node healthy? Asked through web3: HTTP for eth/net, IPC for clique.

A node is healthy when it answers, is not syncing, it has a peer (if it has any to
have), and, for a validator, its address is among the Clique signers. Whether the
chain advances and whether a node lags are judged across nodes, by the caller
(`orchestrator.local.report`). Unreachable is a normal answer, not an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3.types import RPCEndpoint

from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import TRANSPORT_ERRORS, ipc_probe

MAX_LAG_BLOCKS = 2  # a node further behind the highest head it knows takes no traffic


@dataclass(frozen=True)
class NodeHealth:
    reachable: bool
    block: int | None = None
    peers: int | None = None
    syncing: bool | None = None
    head_age: float | None = None
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
        syncing = is_behind(w3.provider.make_request(RPCEndpoint("eth_syncing"), []).get("result"))
    except TRANSPORT_ERRORS as e:
        return NodeHealth(reachable=False, problems=[f"RPC unreachable: {type(e).__name__}"])
    block = int(head["number"])
    head_age = max(0.0, time.time() - int(head["timestamp"]))
    signers = clique_signers(ipc_path, timeout=timeout)
    problems = []
    if syncing:
        problems.append("syncing")
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
        syncing=syncing,
        head_age=head_age,
        signers=signers,
        problems=problems,
    )


def is_behind(syncing: Any) -> bool:
    """Read an `eth_syncing` answer. geth 1.13 answers an object even when level with
    its peers (say, while indexing transactions); only currentBlock < highestBlock counts."""
    if not isinstance(syncing, dict):
        return False
    return int(syncing.get("currentBlock", "0x0"), 16) < int(syncing.get("highestBlock", "0x0"), 16)


def clique_signers(ipc_path: Path, *, timeout: float = 3.0) -> list[str] | None:
    """clique_getSigners over IPC, or None if the node cannot be asked."""
    result = ipc_probe(ipc_path, "clique_getSigners", [], timeout=timeout)
    return [str(s) for s in result] if isinstance(result, list) else None


def node_problems(
    ipc_path: Path, needs_peers: bool, answered: int | None, running: bool = True
) -> list[str]:
    """Why a node should not take traffic (empty: it should): geth is not running or did
    not answer, it is syncing more than 2 blocks behind the highest head it knows, or it
    has no peer while the network has other nodes."""
    if not running:
        return ["geth is not running"]
    if answered is None:
        return ["geth does not answer"]
    problems = []
    syncing = ipc_probe(ipc_path, "eth_syncing", [], timeout=1.0)
    if isinstance(syncing, dict):
        behind = int(syncing.get("highestBlock", "0x0"), 16) - int(
            syncing.get("currentBlock", "0x0"), 16
        )
        if behind > MAX_LAG_BLOCKS:
            problems.append(f"syncing, {behind} blocks behind")
    if needs_peers:
        peers = ipc_probe(ipc_path, "net_peerCount", [], timeout=1.0)
        if not isinstance(peers, str) or int(peers, 16) == 0:
            problems.append("no peers")
    return problems
