"""Credit records on the local consortium: the registry's deployment, the demo, and the
`credit` commands' resolver, wired to the state dir's store and the banks' vaults.

    poactl contracts deploy [--state-dir DIR] [--replace]
    poactl demo [--state-dir DIR]
    poactl credit report|get|history|dispute|resolve --bank NAME ... [--state-dir DIR]

The deployer and admin is the founding member (the first member of the consortium file),
with its transaction key from its vault; every bank's transaction account is a member.
The address goes into the store as `network/contracts.json`, where every bank's resolver
finds it. A bank's endpoint is its first node (its own node). The services are
`orchestrator.credit.deployment` and `orchestrator.credit.demo`; this module only opens
backends (through `orchestrator.wiring`), parses and renders.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from eth_utils.address import to_checksum_address

from orchestrator.boundaries import Vault
from orchestrator.cli_common import handles_errors, state_dir_option
from orchestrator.config import Consortium
from orchestrator.credit.demo import DemoBank, run_demo
from orchestrator.credit.deployment import (
    CONTRACTS_BLOB,
    DEPLOY_HINT,
    ConsortiumResolver,
    DeployOutcome,
    deploy,
    read_registry,
)
from orchestrator.credit.pseudonym import share_secret
from orchestrator.errors import ConfigError, PoaError, StateError
from orchestrator.health import ipc_call
from orchestrator.layout import default_state_dir
from orchestrator.local import LocalConsortium
from orchestrator.network import NetworkInfo, tx_key_name
from orchestrator.web3client import http_web3
from orchestrator.wiring import make_vault

log = logging.getLogger(__name__)

UP_HINT = "start it with `poactl up` (and check `poactl status`)"


# -- the local consortium's banks ----------------------------------------------------


def endpoints(consortium: Consortium) -> dict[str, tuple[str, str]]:
    """Bank -> (its first node, that node's RPC URL): the bank's own endpoint."""
    out: dict[str, tuple[str, str]] = {}
    for node in consortium.nodes:
        out.setdefault(node.member, (node.name, node.rpc_url))
    return {m: out[m] for m in consortium.members()}


def _vaults(local: LocalConsortium, consortium: Consortium) -> dict[str, Vault]:
    return {m: make_vault(local._vault(m)) for m in consortium.members()}


def _network(local: LocalConsortium) -> NetworkInfo:
    network = local.network()
    if network is None:
        raise StateError(
            "the consortium has not published its network yet: it is not running",
            obj=str(local.layout.root),
            hint=UP_HINT,
        )
    return network


def _require_answering(node: str, rpc_url: str) -> int:
    """The node's head block; StateError (not running) if it does not answer."""
    try:
        return int(http_web3(rpc_url, timeout=3).eth.block_number)
    except Exception as e:  # any failure to answer means the same thing here
        raise StateError(
            f"the consortium is not running: node {node} does not answer at {rpc_url}",
            obj=node,
            hint=UP_HINT,
        ) from e


def local_resolver(state_dir: Path | None) -> ConsortiumResolver:
    """The `credit` commands' resolver for the local consortium in `state_dir`."""
    local = LocalConsortium(state_dir or default_state_dir())
    consortium = local.load()
    _network(local)
    return ConsortiumResolver(
        local.store(),
        endpoints={m: url for m, (_, url) in endpoints(consortium).items()},
        vault=lambda member: make_vault(local._vault(member)),
    )


# -- deployment ----------------------------------------------------------------------


def deploy_local(local: LocalConsortium, *, replace: bool = False) -> DeployOutcome:
    """Deploy (or find) the consortium's registry through the founder's own node."""
    consortium = local.load()
    network = _network(local)
    founder = network.founder
    vaults = _vaults(local, consortium)
    # The banks' shared pseudonym secret: `up` creates it with a new consortium; this
    # covers state dirs made before it did (idempotent: an existing secret is kept).
    if share_secret(vaults):
        log.info("created the consortium pseudonym secret in %s", ", ".join(vaults))
    admin_key = vaults[founder].get_secret(tx_key_name(founder))
    if admin_key is None:
        raise StateError(
            f"no transaction key for the founding member {founder} in its vault",
            obj=tx_key_name(founder),
            hint="its leader agent creates it when the consortium starts: " + UP_HINT,
        )
    node, rpc_url = endpoints(consortium)[founder]
    _require_answering(node, rpc_url)
    return deploy(local.store(), rpc_url=rpc_url, admin_key=admin_key, replace=replace)


def render_deploy(outcome: DeployOutcome, network: NetworkInfo) -> str:
    r = outcome.registry
    names = {info.tx_account.lower(): m for m, info in network.members.items()}
    if outcome.sent:
        head = f"CreditRegistry deployed at {r.address} in block {r.block_number} (tx {r.tx_hash})"
    else:
        head = (
            f"CreditRegistry already deployed at {r.address} (block {r.block_number}, "
            f"{r.deployed_at}); nothing sent"
        )
    lines = [
        head,
        f"  admin: {names.get(r.admin.lower(), '?')} {r.admin}",
        "  members: " + ", ".join(f"{names.get(m.lower(), '?')} {m}" for m in r.members),
        f"  recorded in {CONTRACTS_BLOB}, where every bank's SDK and `poactl credit` find it",
    ]
    if outcome.note:
        lines.append(f"  note: {outcome.note}")
    return "\n".join(lines)


def deploy_after_up(local: LocalConsortium) -> str:
    """`poactl up`'s last step: the registry, deployed if needed; one line for its output."""
    try:
        outcome = deploy_local(local)
    except PoaError as e:
        raise StateError(
            f"the consortium is up, but the credit registry was not deployed: {e.what}",
            obj=e.obj,
            hint=(f"{e.hint}; then " if e.hint else "")
            + "`poactl contracts deploy` (`poactl down` stops the consortium)",
        ) from e
    r = outcome.registry
    how = "deployed now" if outcome.sent else "already deployed"
    return (
        f"  credit registry: {r.address} ({how}, block {r.block_number}), recorded in "
        f"{CONTRACTS_BLOB}; try `poactl demo`"
    )


@click.group("contracts")
def contracts() -> None:
    """The consortium's contracts (the CreditRegistry)."""


@contracts.command("deploy")
@state_dir_option
@click.option(
    "--replace",
    is_flag=True,
    help="Deploy a new registry even though one is recorded (when its chain is gone).",
)
@handles_errors
def deploy_command(state_dir: Path, replace: bool) -> None:
    """Deploy the CreditRegistry once (idempotent) and record it in the network information."""
    local = LocalConsortium(state_dir)
    outcome = deploy_local(local, replace=replace)
    click.echo(render_deploy(outcome, _network(local)))


# -- the demo ------------------------------------------------------------------------


@click.command("demo")
@state_dir_option
@handles_errors
def demo(state_dir: Path) -> None:
    """The seed's scenario on the running consortium: Bank A writes through its own
    endpoint, the network seals it, Bank B reads it from its own node."""
    local = LocalConsortium(state_dir)
    consortium = local.load()
    members = consortium.members()
    if len(members) < 2:
        raise ConfigError(
            f"the demo needs two banks; this consortium has {', '.join(members)}",
            obj=str(local.layout.config),
            hint="create a consortium with two members (the default has bank-a and bank-b)",
        )
    network = _network(local)
    nodes = endpoints(consortium)
    (a, (a_node, a_url)), (b, (b_node, b_url)) = [(m, nodes[m]) for m in members[:2]]
    _require_answering(a_node, a_url)
    _require_answering(b_node, b_url)
    store = local.store()
    if read_registry(store) is None:
        raise StateError(
            "the credit registry is not deployed",
            obj=CONTRACTS_BLOB,
            hint=f"deploy it: {DEPLOY_HINT}",
        )
    resolver = ConsortiumResolver(
        store, endpoints={a: a_url, b: b_url}, vault=_vaults(local, consortium).__getitem__
    )
    bank_a = DemoBank(a, a_node, resolver.resolve(a))
    bank_b = DemoBank(b, b_node, resolver.resolve(b))
    holders = {s.lower(): n for n, s in local.signers().items()}
    ipc = local.layout.node(a_node).ipc

    def sealer_of(number: int) -> str | None:
        signer = ipc_call(ipc, "clique_getSigner", [hex(number)])
        if not isinstance(signer, str):
            return None
        return f"{holders.get(signer.lower(), 'signer')} ({to_checksum_address(signer)})"

    click.echo(
        f"The seed's scenario on chain {network.chain_id} (a block every "
        f"{network.block_period} s), CreditRegistry {bank_a.access.registry}"
    )
    result = run_demo(bank_a, bank_b, emit=click.echo, sealer_of=sealer_of)
    if not result.equal:
        click.secho(f"error: {b} did not read what {a} sent", fg="red", err=True)
        sys.exit(1)
