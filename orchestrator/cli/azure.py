"""`azure`: one bank's Azure deployment (infra/azure). `azure params` writes the
deployment's parameter file from the consortium file; `azure template` prints the ARM
template this poactl ships (the committed infra/azure/poactl-bank.json)."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.azure.params import Choices, render
from orchestrator.azure.profiles import PROFILES
from orchestrator.azure.template import render as render_template
from orchestrator.cli.common import handles_errors
from orchestrator.config import load_config
from orchestrator.errors import ConfigError

out_option = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write here [default: standard output].",
)  # fmt: skip


@click.group()
def azure() -> None:
    """One bank's Azure deployment: its parameter file and the ARM template."""


@azure.command()
@click.option("--member", required=True, help="The bank to deploy (a member of the file).")
@click.option(
    "--join",
    metavar="URL",
    default=None,
    help="The consortium data URL of a member to join from [default with private "
    "peering: the founder's data endpoint; the founder leaves it out].",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="small",
    show_default=True,
    help="Cost profile: VM count and size, monitoring.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The consortium file [default: the shipped one].",
)
@out_option
@click.option(
    "--instances",
    type=click.IntRange(1, 64),
    default=None,
    help="VMs, instead of the profile's count.",
)
@click.option(
    "--vault-sku",
    type=click.Choice(["standard", "premium"]),
    default=None,
    help="[default: standard; premium with --hsm]",
)
@click.option("--hsm", is_flag=True, help="Make the validator keys in the vault's HSM.")
@click.option(
    "--runtime",
    type=click.Choice(["docker", "process"]),
    default="docker",
    show_default=True,
    help="How geth runs on the VMs.",
)
@click.option("--image", default=None, help="The geth image [default: the file's].")
@click.option(
    "--app-network",
    "app_networks",
    multiple=True,
    metavar="CIDR",
    help="An application network allowed to JSON-RPC and the monitor (repeat) "
    "[default: the bank's own address space].",
)
@click.option(
    "--operator-ip",
    "operator_addresses",
    multiple=True,
    metavar="ADDRESS",
    help="A public address allowed to the storage account and vault (repeat).",
)
@click.option(
    "--ssh-from",
    "ssh_sources",
    multiple=True,
    metavar="CIDR",
    help="Allow SSH from here (repeat) [default: nobody].",
)
@click.option(
    "--ssh-public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The admin's SSH public key [default: give sshPublicKey when deploying].",
)
@click.option(
    "--wheelhouse",
    default="",
    metavar="NAME",
    help="A tar of dependency wheels in the artifacts container (no PyPI).",
)
@click.option(
    "--name-suffix",
    default=None,
    help="Suffix of the vault and storage names [default: from chain id and member].",
)
@handles_errors
def params(
    *, member: str, join: str | None, profile: str, config: Path | None, out: Path | None,
    instances: int | None, vault_sku: str | None, hsm: bool, runtime: str, image: str | None,
    app_networks: tuple[str, ...], operator_addresses: tuple[str, ...],
    ssh_sources: tuple[str, ...], ssh_public_key: Path | None, wheelhouse: str,
    name_suffix: str | None,
) -> None:  # fmt: skip
    """Write MEMBER's deployment parameters (infra/azure/poactl-bank.json) from the
    consortium file: refuses what cannot work, with the fix."""
    key = None
    if ssh_public_key is not None:
        key = ssh_public_key.read_text().strip()
        if not key.startswith(("ssh-", "ecdsa-")) or "PRIVATE KEY" in key:
            raise ConfigError(
                "not an SSH public key", obj=str(ssh_public_key),
                hint="pass the .pub file (never the private key)",
            )  # fmt: skip
    choices = Choices(
        member=member, profile=profile, join=join, instances=instances,
        vault_sku=vault_sku,  # type: ignore[arg-type]
        hsm=hsm, runtime=runtime,  # type: ignore[arg-type]
        image=image, app_networks=app_networks, operator_addresses=operator_addresses,
        ssh_sources=ssh_sources, wheelhouse=wheelhouse, name_suffix=name_suffix,
        ssh_public_key=key,
    )  # fmt: skip
    rendered = render(load_config(config), choices)
    text = rendered.file_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    p = rendered.parameters
    role = "founds the network" if rendered.founds else f"joins from {p['joinFrom']}"
    click.echo(
        f"{member} {role}: {profile}, {rendered.instances} x {p['vmSize']}, "
        f"{p['peering']} peering, address space {p['addressSpace']}, vault {p['vaultName']} "
        f"({p['vaultSku']}), storage {p['storageAccountName']}" + (f" -> {out}" if out else ""),
        err=True,
    )
    for note in rendered.notes:
        click.echo(f"  note: {note}", err=True)


@azure.command()
@out_option
@handles_errors
def template(out: Path | None) -> None:
    """Print the ARM template of one bank's deployment (found or join)."""
    text = render_template()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)


config_option = click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poactl/agent.yaml"), show_default=True,
    help="The agent file of one of the bank's VMs (its store, vault and node).",
)  # fmt: skip


@azure.group()
def operate() -> None:
    """A bank operator's steps, run on one of the bank's VMs with its identity
    (e.g. `az vm run-command invoke ... --scripts "poactl azure operate ..."`)."""


@operate.command()
@config_option
@handles_errors
def init(config: Path) -> None:
    """Founder: make the consortium's pseudonym secret and deploy the credit registry."""
    from orchestrator.azure.operate import init as run
    from orchestrator.wiring import bank_site

    site = bank_site(config)
    done = run(site)
    secret = "made the pseudonym secret" if done.secret_created else "pseudonym secret present"
    registry = "deployed" if done.deployed else "already deployed"
    click.echo(f"{site.member}: {secret}; credit registry {registry} at "
               f"{done.registry.address} (block {done.registry.block_number})")  # fmt: skip


@operate.command()
@click.argument("name")
@click.option(
    "--data",
    "url",
    required=True,
    metavar="URL",
    help="The joining bank's consortium data URL (its deployment's output).",
)
@config_option
@handles_errors
def admit(name: str, url: str, config: Path) -> None:
    """Propose bank NAME as a member (this bank approves), give it gas money, and tell
    this bank's agents where it publishes."""
    from orchestrator.azure.operate import admit as run
    from orchestrator.wiring import bank_site

    site = bank_site(config)
    done = run(site, name, url)
    click.echo(
        f"{site.member} proposed {name} ({done.info.admin}) in block {done.block}: "
        f"{done.status} with {done.approvals} approval(s) ({done.threshold} decide among the "
        "members now); funded its admin and writer accounts\n  next: the other members run "
        f"`poactl azure operate vote {name} --approve`; then `poactl azure operate share-secret`"
    )


@operate.command()
@click.argument("name")
@click.option("--approve/--reject", required=True)
@config_option
@handles_errors
def vote(name: str, approve: bool, config: Path) -> None:
    """Approve or reject the open proposal about bank NAME."""
    from orchestrator.azure.operate import vote as run
    from orchestrator.wiring import bank_site

    site = bank_site(config)
    block = run(site, name, approve=approve)
    click.echo(f"{site.member} {'approved' if approve else 'rejected'} {name} in block {block}")


@operate.command()
@click.argument("name")
@config_option
@handles_errors
def remove(name: str, config: Path) -> None:
    """Propose voting member NAME out (this bank approves)."""
    from orchestrator.azure.operate import remove as run
    from orchestrator.wiring import bank_site

    site = bank_site(config)
    block = run(site, name)
    click.echo(f"{site.member} proposed removing {name} in block {block}; the other members "
               f"vote with `poactl azure operate vote {name} --approve`")  # fmt: skip


@operate.command("share-secret")
@click.argument("name")
@click.option(
    "--data", "url", required=True, metavar="URL", help="The admitted bank's consortium data URL."
)
@config_option
@handles_errors
def share_secret(name: str, url: str, config: Path) -> None:
    """Give admitted bank NAME the pseudonym secret, sealed to its admin key."""
    from orchestrator.azure.operate import share_secret as run
    from orchestrator.wiring import bank_site

    site = bank_site(config)
    blob = run(site, name, url)
    click.echo(f"{site.member} sealed the pseudonym secret to {name}: {blob}; {name}'s "
               "leader takes it into its vault")  # fmt: skip
