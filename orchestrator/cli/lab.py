"""`poactl lab`: the consortium with every node in its own network namespace, banks on
their own subnets joined by a router, so the links between banks can be slowed or cut.

    poactl lab up [--config FILE]       build the network, start (or resume) the consortium
    poactl lab status                   hosts, addresses, heads, links, cuts
    poactl lab net --latency 200 --rate 512 | --cut bank-a,bank-b | --isolate HOST | --heal
    poactl lab exec HOST -- CMD...      run a command on a host (inside its namespace)
    poactl lab down [--purge]           stop it and remove the network (--purge: the files too)

Needs root on Linux (network namespaces, veths, iptables) and scripts/setup.sh's tools.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from orchestrator.cli.common import handles_errors
from orchestrator.errors import ConfigError
from orchestrator.lab import netns
from orchestrator.lab.lab import Lab
from orchestrator.lab.status import lab_status
from orchestrator.local.layout import default_state_dir

dir_option = click.option(
    "--dir", "root", type=click.Path(file_okay=False, path_type=Path),
    default=lambda: default_state_dir().with_name("lab"), envvar="POACTL_LAB_DIR",
    show_default="$XDG_STATE_HOME/poactl/lab", help="The lab's directory.",
)  # fmt: skip


@click.group()
def lab() -> None:
    """The consortium across network namespaces, with links to slow and cut (root)."""


@lab.command()
@dir_option
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="consortium.yaml for a new lab [default: the shipped two-bank consortium].",
)  # fmt: skip
@click.option("--timeout", type=float, default=300.0, show_default=True)
@handles_errors
def up(root: Path, config: Path | None, timeout: float) -> None:
    """Build the lab's network if it is not there, then start (or resume) its consortium."""
    created = not (root / "lab.json").exists()
    the_lab = Lab.create(root, config) if created else Lab.open(root)
    try:
        result = the_lab.up(timeout=timeout, on_progress=lambda line: click.echo(f"  … {line}"))
    except BaseException:
        the_lab.down(purge=created)  # a lab that never came up leaves nothing behind
        raise
    click.echo(f"lab {the_lab.plan.prefix} up in {result.seconds:.1f}s at block {result.head} "
               f"({root})")  # fmt: skip
    click.echo(lab_status(the_lab))
    bank = the_lab.plan.banks[0]
    click.echo(
        "next: `poactl lab net --latency 200` (each way between banks), "
        f"`poactl lab net --cut {bank.member},{the_lab.plan.banks[-1].member}`, "
        f"`poactl lab exec {bank.member}-app -- curl -s {result.balancers.get(bank.member)}`, "
        "`poactl lab down`"
    )


@lab.command()
@dir_option
@handles_errors
def status(root: Path) -> None:
    """Hosts with their namespaces and addresses, each node's agent and head, the links'
    toxics and the cuts in force."""
    click.echo(lab_status(Lab.open(root)))


@lab.command()
@dir_option
@click.option("--latency", type=click.IntRange(0, 60_000), default=0, help="ms, each way.")
@click.option("--jitter", type=click.IntRange(0, 60_000), default=0, help="± ms.")
@click.option("--rate", type=click.IntRange(1, 10**7), default=None, help="KB/s, each way.")
@click.option("--cut", "cuts", multiple=True, metavar="BANK,BANK", help="Partition two banks.")
@click.option("--isolate", "isolated", multiple=True, metavar="HOST",
              help="Cut a host from everyone (a node keeps its store).")  # fmt: skip
@click.option("--heal", is_flag=True, help="Remove every cut.")
@click.option("--clear", is_flag=True, help="Remove latency and bandwidth caps.")
@handles_errors
def net(
    root: Path, *, latency: int, jitter: int, rate: int | None, cuts: tuple[str, ...],
    isolated: tuple[str, ...], heal: bool, clear: bool,
) -> None:  # fmt: skip
    """Slow the links between banks (Toxiproxy), cut them (iptables), or heal them."""
    the_lab = Lab.open(root)
    if heal:
        the_lab.heal()
    if clear:
        the_lab.wan.reset()
    if latency or rate:
        the_lab.wan.slow(latency_ms=latency, jitter_ms=jitter, rate_kb=rate)
    members = [b.member for b in the_lab.plan.banks]
    for pair in cuts:
        a, _, b = pair.partition(",")
        if a not in members or b not in members or a == b:
            raise ConfigError(f"--cut {pair}: give two banks of the lab", obj=pair,
                              hint="banks: " + ", ".join(members))  # fmt: skip
        the_lab.cut_banks(a, b)
    for host in isolated:
        try:
            the_lab.isolate(host)
        except KeyError:
            raise ConfigError(f"no host {host!r} in the lab", obj=host,
                              hint="see `poactl lab status`") from None  # fmt: skip
    click.echo(lab_status(the_lab, nodes=False))


@lab.command(context_settings={"ignore_unknown_options": True})
@dir_option
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@handles_errors
def exec(root: Path, host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on HOST (a node, or BANK-lb, BANK-st, BANK-app), inside its namespace."""
    the_lab = Lab.open(root)
    try:
        ns = the_lab.plan.host(host).ns
    except KeyError:
        raise ConfigError(f"no host {host!r} in the lab", obj=host,
                          hint="see `poactl lab status`") from None  # fmt: skip
    if ns not in netns.names():
        raise ConfigError("the lab's network is down", obj=str(root), hint="`poactl lab up`")
    os.execvp("ip", ["ip", "netns", "exec", ns, *command])  # noqa: S606 - the user's command


@lab.command()
@dir_option
@click.option("--purge", is_flag=True, help="Also delete the lab's directory (chain, keys).")
@handles_errors
def down(root: Path, purge: bool) -> None:
    """Stop every process of the lab and remove its network; keep its files unless --purge."""
    the_lab = Lab.open(root)
    the_lab.down(purge=purge)
    click.echo(f"lab {the_lab.plan.prefix} down" + (f"; deleted {root}" if purge else ""))
