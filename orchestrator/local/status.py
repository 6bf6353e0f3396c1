"""`poactl status` of a local consortium: each node's agent record and health, asked in
parallel and judged across nodes, and who holds each bank's leases (read from the
bank's own store: leases never leave a bank)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from orchestrator.agent import status
from orchestrator.agent.status import ENDED, AgentState, AgentStatus
from orchestrator.boundaries import Store
from orchestrator.config import Consortium, NodeSpec
from orchestrator.geth.health import NodeHealth, check_node
from orchestrator.geth.lag import Head, assess
from orchestrator.local import balancers, indexes, monitors
from orchestrator.local.layout import StateLayout
from orchestrator.local.report import ConsortiumStatus, LeaseRow, NodeStatus
from orchestrator.network.create import NetworkInfo, read_member
from orchestrator.network.leases import holder_of
from orchestrator.network.names import identity_lease, leader_lease


def collect_status(
    layout: StateLayout,
    consortium: Consortium,
    *,
    running: Callable[[str], bool],
    network: NetworkInfo | None,
    own_store: Callable[[str], Store],
) -> ConsortiumStatus:
    """`running(node)`: whether an agent holds the node's lock; `own_store(member)`: the
    bank's own store."""
    many = len(consortium.nodes) > 1

    def one(node: NodeSpec) -> NodeStatus:
        paths = layout.node(node.name)
        agent = status.read(paths.agent_status, AgentStatus)
        state = agent.seen(running=running(node.name)) if agent is not None else AgentState.STOPPED
        live = agent is not None and state not in ENDED
        signer = agent.identity.signer if live and agent and agent.identity else None
        health = check_node(node.rpc_url, paths.ipc, signer=signer, expect_peers=many)
        return NodeStatus(
            node,
            signer,
            state,
            bool(agent and agent.sealing) and state is AgentState.SEALING,
            health,
            leader=live and bool(agent and agent.leader),
            clique=agent.clique if live and agent else None,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        nodes = list(pool.map(one, consortium.nodes))
    now, period = time.time(), consortium.settings.block_period
    heads = {n.spec.name: head for n in nodes if (head := _head(n.spec.name, n.health, now))}

    def judged(n: NodeStatus) -> NodeStatus:
        """Its lag against every other node's head and its own sync's highest block."""
        others = [h for name, h in heads.items() if name != n.spec.name]
        if n.health.highest is not None:
            others.append(Head(n.health.highest, now, source="eth_syncing"))
        own = heads.get(n.spec.name)
        return dataclasses.replace(n, chain=assess(own, others, now=now, period=period))

    nodes = [judged(n) for n in nodes]
    return ConsortiumStatus(
        consortium.settings.chain_id,
        layout.root,
        nodes,
        _leases(consortium, network, own_store),
        [m.as_dict() for m in monitors.rows(layout, consortium)],
        [b.as_dict() for b in balancers.rows(layout, consortium)],
        [i.as_dict() for i in indexes.rows(layout, consortium)],
    )


def _head(node: str, health: NodeHealth, now: float) -> Head | None:
    if health.block is None:
        return None
    return Head(health.block, now, health.block_time, node)


def _leases(
    consortium: Consortium, network: NetworkInfo | None, own_store: Callable[[str], Store]
) -> list[LeaseRow]:
    if network is None:
        return []
    rows = []
    for member in consortium.members():
        store = own_store(member)
        h = holder_of(store, leader_lease(member))
        rows.append(LeaseRow(member, "leader", None, h.holder if h.leased else None))
        for i, signer in enumerate(_signers_of(network, member, store)):
            h = holder_of(store, identity_lease(member, i))
            rows.append(LeaseRow(member, f"identity-{i}", signer, h.holder if h.leased else None))
    return rows


def _signers_of(network: NetworkInfo, member: str, store: Store) -> tuple[str, ...]:
    """A founder's identities from the genesis; a joined bank's from its descriptor."""
    if member in network.members:
        return network.signers(member)
    info = read_member(store, member)
    return info.signers if info is not None else ()
