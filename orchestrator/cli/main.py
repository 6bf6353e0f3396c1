"""`poactl`: the command group. Each command lives in a module of its own kind and is
imported only when it runs (or for `--help`): `poactl balancer` need not load web3 and
the local consortium, which matters when `up` starts ten of these processes on a small
machine. Errors map to exit codes in one place (`cli.common.handles_errors`).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator import __version__
from orchestrator.cli.common import RESOLVER_FACTORY_KEY

if TYPE_CHECKING:
    from orchestrator.credit.access import BankResolver

COMMANDS = {  # name -> "module:attribute"
    "up": "orchestrator.cli.consortium:up",
    "join": "orchestrator.cli.consortium:join",
    "status": "orchestrator.cli.consortium:status",
    "down": "orchestrator.cli.consortium:down",
    "destroy": "orchestrator.cli.consortium:destroy",
    "logs": "orchestrator.cli.consortium:logs",
    "agent": "orchestrator.cli.services:agent",
    "monitor": "orchestrator.cli.services:monitor",
    "balancer": "orchestrator.cli.services:balancer",
    "index": "orchestrator.cli.index:index",
    "contracts": "orchestrator.cli.contracts:contracts",
    "demo": "orchestrator.cli.contracts:demo",
    "credit": "orchestrator.cli.credit:credit",
    "members": "orchestrator.cli.members:members",
    "azure": "orchestrator.cli.azure:azure",
    "serve-data": "orchestrator.cli.services:serve_data",
    "lab": "orchestrator.cli.lab:lab",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when first needed (click's
    documented pattern for lazily loaded subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), COMMANDS[cmd_name]
        return command


def _local_resolver(state_dir: Path | None) -> BankResolver:
    """`credit --bank` names a bank of the local consortium (imported when used)."""
    from orchestrator.local.registry import local_resolver

    return local_resolver(state_dir)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="poactl")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Run a bank consortium's private Clique (proof-of-authority) network on stock geth."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(max(level, logging.WARNING))  # the SDK logs each request
    ctx.meta[RESOLVER_FACTORY_KEY] = _local_resolver
