"""Credit records on the local consortium: the registry's deployment, the demo's banks
and the `credit` commands' resolver, wired to the state dir's store and the banks' vaults.

The deployer is the founding member (the first member of the consortium file), with its
transaction key from its vault; it gets no power over the registry, which asks the
Governance contract who writes (each member's transaction account, from the genesis).
The address goes into the store as `network/contracts.json`, where every bank's resolver
finds it. A bank's endpoint is its first node (its own node). The services are
`orchestrator.credit.deployment` and `orchestrator.credit.demo`; the commands that call
this module are in `orchestrator.cli.contracts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_utils.address import to_checksum_address

from orchestrator.boundaries import Secret, Vault
from orchestrator.config import Consortium
from orchestrator.credit.demo import DemoBank
from orchestrator.credit.deployment import (
    CONTRACTS_BLOB,
    DEPLOY_HINT,
    ConsortiumResolver,
    DeployOutcome,
    deploy,
    read_registry,
)
from orchestrator.credit.pseudonym import share_secret
from orchestrator.errors import ConfigError, StateError
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_probe
from orchestrator.local import balancers, indexes
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.layout import default_state_dir
from orchestrator.network.create import NetworkInfo
from orchestrator.network.names import tx_key_name

log = logging.getLogger(__name__)

UP_HINT = "start it with `poactl up` (and check `poactl status`)"


def endpoints(consortium: Consortium) -> dict[str, tuple[str, str]]:
    """Bank -> (its first node, that node's RPC URL): the bank's own node."""
    out: dict[str, tuple[str, str]] = {}
    for node in consortium.nodes:
        out.setdefault(node.member, (node.name, node.rpc_url))
    return {m: out[m] for m in consortium.members()}


@dataclass(frozen=True)
class AppEndpoint:
    """Where a bank's applications send their JSON-RPC: its balancer (with the bank's
    default application token) when the consortium has balancers, else its first node."""

    name: str  # what to call it in messages
    url: str
    token: Secret | None


def app_endpoints(local: LocalConsortium, consortium: Consortium) -> dict[str, AppEndpoint]:
    nodes = endpoints(consortium)
    if consortium.settings.balancer is None:
        return {m: AppEndpoint(node, url, None) for m, (node, url) in nodes.items()}
    return {
        m: AppEndpoint(f"{m}'s balancer", balancers.url_of(consortium, m),
                       balancers.token(local.layout, m))
        for m in consortium.members()
    }  # fmt: skip


def _vaults(local: LocalConsortium, consortium: Consortium) -> dict[str, Vault]:
    return {m: local.vault(m) for m in consortium.members()}


def running_network(local: LocalConsortium) -> NetworkInfo:
    network = local.network()
    if network is None:
        raise StateError(
            "the consortium has not published its network yet: it is not running",
            obj=str(local.layout.root),
            hint=UP_HINT,
        )
    return network


def require_answering(node: str, rpc_url: str, token: Secret | None = None) -> int:
    """The head block at `rpc_url`; StateError (not running) if it does not answer."""
    try:
        return int(http_web3(rpc_url, timeout=3, token=token).eth.block_number)
    except Exception as e:  # any failure to answer means the same thing here
        raise StateError(
            f"the consortium is not running: {node} does not answer at {rpc_url}",
            obj=node,
            hint=UP_HINT,
        ) from e


def local_resolver(state_dir: Path | None) -> ConsortiumResolver:
    """The `credit` commands' resolver for the local consortium in `state_dir`."""
    local = LocalConsortium(state_dir or default_state_dir())
    consortium = local.load()
    running_network(local)
    apps = app_endpoints(local, consortium)
    return ConsortiumResolver(
        local.store(),
        endpoints={m: e.url for m, e in apps.items()},
        vault=local.vault,
        tokens={m: e.token for m, e in apps.items() if e.token is not None},
        indexes=indexes.running_urls(local.layout, consortium),
    )


def deploy_local(local: LocalConsortium, *, replace: bool = False) -> DeployOutcome:
    """Deploy (or find) the consortium's registry through the founder's own node."""
    if local.joined_from():
        raise StateError(
            "a bank that joined a running network does not deploy the credit registry: it "
            "uses the consortium's (and never makes a pseudonym secret of its own)",
            obj=str(local.layout.root),
            hint="`poactl credit` commands find the registry in the consortium data",
        )
    consortium = local.load()
    network = running_network(local)
    founder = network.founder
    vaults = _vaults(local, consortium)
    # The banks' shared pseudonym secret: `up` creates it with a new consortium; this
    # covers state dirs made before it did (idempotent: an existing secret is kept).
    if share_secret(vaults):
        log.info("created the consortium pseudonym secret in %s", ", ".join(vaults))
    deployer_key = vaults[founder].get_secret(tx_key_name(founder))
    if deployer_key is None:
        raise StateError(
            f"no transaction key for the founding member {founder} in its vault",
            obj=tx_key_name(founder),
            hint="its leader agent creates it when the consortium starts: " + UP_HINT,
        )
    node, rpc_url = endpoints(consortium)[founder]
    require_answering(node, rpc_url)
    return deploy(local.store(), rpc_url=rpc_url, deployer_key=deployer_key, replace=replace)


@dataclass(frozen=True)
class DemoSetup:
    """The demo's two banks on the running consortium, and who sealed a block."""

    network: NetworkInfo
    bank_a: DemoBank
    bank_b: DemoBank
    sealer_of: Callable[[int], str | None]  # block number -> "node (signer)"


def demo_setup(local: LocalConsortium) -> DemoSetup:
    """The first two banks, each through its own endpoint (its balancer, or its first
    node), with the registry deployed."""
    consortium = local.load()
    members = consortium.members()
    if len(members) < 2:
        raise ConfigError(
            f"the demo needs two banks; this consortium has {', '.join(members)}",
            obj=str(local.layout.config),
            hint="create a consortium with two members (the default has bank-a and bank-b)",
        )
    network = running_network(local)
    apps = app_endpoints(local, consortium)
    a, b = members[:2]
    for bank in (a, b):
        require_answering(apps[bank].name, apps[bank].url, apps[bank].token)
    store = local.store()
    if read_registry(store) is None:
        raise StateError(
            "the credit registry is not deployed",
            obj=CONTRACTS_BLOB,
            hint=f"deploy it: {DEPLOY_HINT}",
        )
    resolver = ConsortiumResolver(
        store,
        endpoints={m: apps[m].url for m in (a, b)},
        vault=_vaults(local, consortium).__getitem__,
        tokens={m: t for m in (a, b) if (t := apps[m].token) is not None},
    )
    a_node, b_node = apps[a].name, apps[b].name
    holders = {s.lower(): n for n, s in local.signers().items()}
    ipc = local.layout.node(endpoints(consortium)[a][0]).ipc  # bank A's own first node

    def sealer_of(number: int) -> str | None:
        signer = ipc_probe(ipc, "clique_getSigner", [hex(number)])
        if not isinstance(signer, str):
            return None
        return f"{holders.get(signer.lower(), 'signer')} ({to_checksum_address(signer)})"

    return DemoSetup(
        network,
        DemoBank(a, a_node, resolver.resolve(a)),
        DemoBank(b, b_node, resolver.resolve(b)),
        sealer_of,
    )
