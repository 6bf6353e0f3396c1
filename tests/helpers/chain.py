"""Reading a local consortium's chain and agents in a test: each node's head and
canonical chain over its IPC socket, an agent's status record, and the safety check
every failover test ends with (no signer sealed twice at one height)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.sealed import sealed_blocks
from orchestrator.local.consortium import LocalConsortium
from tests.helpers.waiting import wait_for


def agent(local: LocalConsortium, node: str) -> dict[str, object]:
    return json.loads(local.layout.node(node).agent_status.read_text())  # type: ignore[no-any-return]


def head(local: LocalConsortium, node: str) -> int:
    answer = ipc_probe(local.layout.node(node).ipc, "eth_blockNumber", [])
    return int(answer, 16) if isinstance(answer, str) else -1


def wait_until_all_reach(local: LocalConsortium, node: str, timeout: float = 20.0) -> None:
    """Block until every node is at `node`'s head or beyond: a write acknowledged by one
    bank's node may not have reached another bank's node yet (a block behind)."""
    target = head(local, node)
    names = [n.name for n in local.load().nodes]
    wait_for(lambda: all(head(local, n) >= target for n in names), timeout,
             f"every node to reach block {target}")  # fmt: skip


def chain_of(local: LocalConsortium, node: str) -> dict[int, tuple[str, str]]:
    """height -> (signer, block hash) of `node`'s canonical chain."""
    ipc = local.layout.node(node).ipc
    chain = {}
    for n in range(1, head(local, node) + 1):
        block = ipc_probe(ipc, "eth_getBlockByNumber", [hex(n), False])
        signer = ipc_probe(ipc, "clique_getSigner", [hex(n)])
        if block and signer:
            chain[n] = (str(signer).lower(), str(block["hash"]))
    return chain


def assert_no_signer_sealed_twice_at_one_height(local: LocalConsortium) -> None:
    seen: dict[tuple[int, str], set[str]] = {}
    for node in (n.name for n in local.load().nodes):
        for height, (signer, block_hash) in chain_of(local, node).items():
            seen.setdefault((height, signer), set()).add(block_hash)
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"a signer sealed two blocks at one height: {twice}"


def keystore_files(local: LocalConsortium, node: str) -> list[str]:
    """Every file in `node`'s geth keystore: with the agent as geth's external signer
    there is never one, not even the temporary file of a half-written key."""
    keystore = local.layout.node(node).datadir / "keystore"
    return sorted(p.name for p in keystore.iterdir()) if keystore.is_dir() else []


def sealed_heights(geth_log: Path, moment: float) -> set[int]:
    """Block numbers `geth_log` says were sealed after unix time `moment`."""
    return {number for _, number in sealed_blocks(geth_log, after=moment)}


def kill_agent_and_geth(local: LocalConsortium, node: str) -> float:
    """kill -9 the node's agent and its geth (a VM that dies); the unix time."""
    paths = local.layout.node(node)
    agent_pid = json.loads(paths.agent_status.read_text())["pid"]
    geth_pid = json.loads(paths.status.read_text())["geth_pid"]
    os.kill(agent_pid, signal.SIGKILL)
    os.kill(geth_pid, signal.SIGKILL)
    return time.time()
