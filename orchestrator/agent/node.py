"""The node an agent runs: its chain, initialised once from the published genesis and
checked against it on every start, its p2p identity, and the supervised geth.

Kept apart from the state machine (`machine`) so that what touches the datadir and
geth's command line reads in one place.
"""

from __future__ import annotations

from orchestrator.agent.paths import NodePaths
from orchestrator.agent.settings import AgentFile
from orchestrator.agent.supervisor import RestartPolicy, SealingSwitch, SupervisedNode, Supervisor
from orchestrator.boundaries import Runtime, Store
from orchestrator.config import ConsortiumFile
from orchestrator.errors import NodeError, StateError
from orchestrator.geth.command import GethNode, geth_argv, geth_init_argv
from orchestrator.geth.keys import create_node_key, enode_url, follower_address
from orchestrator.network.create import NetworkInfo, read_genesis
from orchestrator.network.peers import publish_enode
from orchestrator.retry import retry_transient


def prepare_node(
    paths: NodePaths,
    settings: AgentFile,
    network: NetworkInfo,
    *,
    store: Store,
    runtime: Runtime,
    geth: str,
) -> None:
    """The published genesis (checked against its hash), the chain initialised from it
    once, and this node's enode published for its peers."""
    genesis = retry_transient(
        lambda: read_genesis(store, network), what="read the genesis", timeout=60
    )
    init_chain(paths, network, genesis, name=settings.node, runtime=runtime, geth=geth)
    host, port = settings.host, settings.ports.p2p
    if settings.advertise:
        host, _, advertised = settings.advertise.rpartition(":")
        port = int(advertised)
    enode = node_enode(paths, host, port)
    retry_transient(
        lambda: publish_enode(store, settings.node, settings.member, enode),
        what="publish the enode",
        timeout=60,
    )


def init_chain(
    paths: NodePaths,
    network: NetworkInfo,
    genesis: bytes,
    *,
    name: str,
    runtime: Runtime,
    geth: str,
) -> None:
    """Run `geth init` the first time; refuse a datadir made from another genesis."""
    marker = paths.genesis_marker
    recorded = marker.read_text().strip() if marker.exists() else None
    if recorded is not None and recorded != network.genesis_sha256:
        raise StateError(
            f"this node's chain was created from genesis {recorded[:12]}…, but the "
            f"store publishes genesis {network.genesis_sha256[:12]}…",
            obj=str(paths.datadir),
            hint="point the agent at the store of the network this node belongs to, "
            "or delete its datadir to join the published network afresh",
        )
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.genesis.write_bytes(genesis)
    if recorded is None:
        argv = geth_init_argv(geth, paths.datadir, paths.genesis)
        code, output = runtime.run_once(argv, name=name)
        if code != 0:
            raise NodeError(
                "`geth init` failed: " + " | ".join(output.strip().splitlines()[-3:]),
                obj=name,
                hint="a datadir made from another genesis must be deleted to join this network",
            )
        marker.write_text(network.genesis_sha256 + "\n")


def node_enode(paths: NodePaths, host: str, port: int) -> str:
    """The node's enode URL; its node key is made the first time."""
    if not paths.nodekey.exists():
        create_node_key(paths.nodekey)
    return enode_url(paths.nodekey, host, port)


def supervise_geth(
    paths: NodePaths,
    settings: AgentFile,
    consortium: ConsortiumFile,
    *,
    chain_id: int,
    peers: int,
    geth: str,
    runtime: Runtime,
    sealer: SealingSwitch,
) -> Supervisor:
    """The supervisor of this node's geth, with the argv every node of the network gets."""
    argv = geth_argv(
        geth,
        GethNode(
            datadir=paths.datadir,
            config_file=paths.geth_config,
            ipc_path=paths.ipc,
            network_id=chain_id,
            http_port=settings.ports.http,
            authrpc_port=settings.ports.authrpc,
            metrics_port=settings.ports.metrics,
            max_peers=max(16, 2 * peers + 4),
            etherbase=follower_address(settings.node),
            external_signer=paths.signer_ipc,
            gas_limit=consortium.gas_limit,
            tuning=consortium.tuning.flags(),
            rpc_host=settings.rpc_host,
            peer_network=settings.peer_network,
        ),
    )
    return Supervisor(
        SupervisedNode(
            name=settings.node,
            argv=argv,
            datadir=paths.datadir,
            log_file=paths.geth_log,
            status_file=paths.status,
            lock_file=None,  # the agent holds the node's lock
            sealer=sealer,
            env=consortium.tuning.environment(),
        ),
        runtime,
        RestartPolicy(
            max_restarts=consortium.supervision.max_restarts,
            backoff_max=consortium.supervision.backoff_max_seconds,
        ),
    )
