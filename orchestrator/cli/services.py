"""`poactl agent | monitor | balancer | serve-data`: one service in the foreground, as systemd (or
`up`) runs it. Kept apart from the other commands so that starting one imports only
what that service needs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click

from orchestrator.cli.common import handles_errors
from orchestrator.network.served import DATA_PORT
from orchestrator.wiring import run_agent, run_balancer, run_data_server, run_monitor


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poactl/agent.yaml"),
    show_default=True,
    help="The agent's settings (member, node, store, vault, runtime).",
)
@handles_errors
def agent(config: Path) -> None:
    """Run this VM's agent in the foreground: leases, keys, geth, /health (systemd runs it)."""
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    sys.exit(run_agent(config))


def _service_command(name: str, run: Callable[[Path], int], doc: str) -> click.Command:
    """`poactl <name> --config /etc/poactl/<name>.yaml`: one bank's service, foreground."""

    @click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path(f"/etc/poactl/{name}.yaml"),
        show_default=True,
        help=f"The {name}'s settings (`up` writes one per bank under {name}s/<bank>/).",
    )
    @handles_errors
    def command(config: Path) -> None:
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
        sys.exit(run(config))

    command.__doc__ = doc
    return click.command(name)(command)


monitor = _service_command(
    "monitor", run_monitor,
    "Run a bank's monitor in the foreground: page, JSON API and /metrics (`up` starts one "
    "per bank).",
)  # fmt: skip
balancer = _service_command(
    "balancer", run_balancer,
    "Run a bank's load balancer in the foreground: HAProxy and the JSON-RPC filter (`up` "
    "starts one per bank when the consortium file has `balancer:`).",
)  # fmt: skip


@click.command("serve-data")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poactl/agent.yaml"),
    show_default=True,
    help="The agent's settings: its store's publication, and the address to listen on.",
)
@click.option("--port", type=click.IntRange(1024, 65535), default=DATA_PORT, show_default=True)
@handles_errors
def serve_data(config: Path, port: int) -> None:
    """Serve this bank's consortium data read-only (what other banks read; systemd runs it)."""
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    sys.exit(run_data_server(config, port))
