"""`poactl contracts deploy` and `poactl demo`: credit records on the local consortium.

    poactl contracts deploy [--state-dir DIR] [--replace]
    poactl demo [--state-dir DIR]

Parse, call `orchestrator.local.registry`, render.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.common import handles_errors, state_dir_option
from orchestrator.credit.demo import run_demo
from orchestrator.credit.deployment import CONTRACTS_BLOB, DeployOutcome
from orchestrator.errors import PoaError, StateError
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.registry import demo_setup, deploy_local, running_network
from orchestrator.network.create import NetworkInfo


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
        f"  deployed by {names.get(r.deployer.lower(), '?')} {r.deployer} (no power over it)",
        f"  writers: the members' writer accounts in governance {r.governance} (`poactl members`)",
        f"  recorded in {CONTRACTS_BLOB}, where every bank's SDK and `poactl credit` find it",
    ]
    if outcome.note:
        lines.append(f"  note: {outcome.note}")
    return "\n".join(lines)


def deploy_after_up(local: LocalConsortium) -> str:
    """`poactl up`'s last step: the registry, deployed if needed; one line for its output."""
    if local.joined_from():
        return "  credit registry: the consortium's, recorded by the member this bank joined from"
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
    click.echo(render_deploy(outcome, running_network(local)))


# -- the demo ------------------------------------------------------------------------


@click.command("demo")
@state_dir_option
@handles_errors
def demo(state_dir: Path) -> None:
    """The seed's scenario on the running consortium: Bank A writes through its own
    endpoint, the network seals it, Bank B reads it from its own node."""
    setup = demo_setup(LocalConsortium(state_dir))
    bank_a, bank_b, network = setup.bank_a, setup.bank_b, setup.network
    click.echo(
        f"The seed's scenario on chain {network.chain_id} (a block every "
        f"{network.block_period} s), CreditRegistry {bank_a.access.registry}"
    )
    result = run_demo(bank_a, bank_b, emit=click.echo, sealer_of=setup.sealer_of)
    if not result.equal:
        click.secho(
            f"error: {bank_b.name} did not read what {bank_a.name} sent", fg="red", err=True
        )
        sys.exit(1)
