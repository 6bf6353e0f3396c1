"""`poactl`: parse, call one service, render. Errors map to exit codes in one place.

Exit codes: 0 ok (all healthy), 1 error, 2 degraded (`status` with an unhealthy node).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click

from orchestrator import __version__
from orchestrator.cli.common import handles_errors, state_dir_option
from orchestrator.cli.contracts import contracts, demo, deploy_after_up
from orchestrator.cli.credit import RESOLVER_FACTORY_KEY, credit
from orchestrator.local.consortium import UP_TIMEOUT_SECONDS, LocalConsortium, UpResult
from orchestrator.local.registry import local_resolver
from orchestrator.local.report import ConsortiumStatus
from orchestrator.logs import follow_file, log_tail
from orchestrator.wiring import run_agent, run_balancer, run_monitor

EXIT_OK, EXIT_ERROR, EXIT_DEGRADED = 0, 1, 2

geth_option = click.option(
    "--geth",
    envvar="POACTL_GETH",
    default=None,
    help="geth 1.13.15 binary [default: .tools/bin/geth from scripts/setup.sh, else PATH].",
)


@click.group()
@click.version_option(__version__, prog_name="poactl")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Run a bank consortium's private Clique (proof-of-authority) network on stock geth."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(max(level, logging.WARNING))  # the SDK logs each request
    ctx.meta[RESOLVER_FACTORY_KEY] = local_resolver  # `credit --bank` names a local bank


@main.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="consortium.yaml [default: the shipped two-bank, four-validator consortium].",
)
@state_dir_option
@geth_option
@click.option(
    "--timeout",
    type=float,
    default=UP_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for every validator to seal a block.",
)
@click.option(
    "--deploy/--no-deploy",
    default=True,
    show_default=True,
    help="Deploy the credit registry once the network is ready (idempotent).",
)
@handles_errors
def up(
    config: Path | None, state_dir: Path, geth: str | None, timeout: float, deploy: bool
) -> None:
    """Start the local consortium in the background; return once every validator sealed."""
    local = LocalConsortium(state_dir, geth=geth)
    result = local.up(config, timeout=timeout, on_progress=lambda line: click.echo(f"  … {line}"))
    click.echo(_render_up(result, state_dir))
    if deploy:
        click.echo(deploy_after_up(local))  # the CreditRegistry, recorded in the store


def _render_up(r: UpResult, state_dir: Path) -> str:
    verb = "created and started" if r.created else "started"
    lines = [
        f"consortium {verb} in {r.seconds:.1f}s at block {r.head} ({state_dir})",
        f"  nodes started: {', '.join(r.started) or 'none'}"
        + (f"; already running: {', '.join(r.already_running)}" if r.already_running else ""),
        "  RPC endpoints:",
    ]
    lines += [f"    {member}: {'  '.join(urls)}" for member, urls in r.member_rpc.items()]
    if r.balancers:
        lines.append("  balancers (JSON-RPC for the banks' applications, token required):")
        lines += [f"    {member}: {url}" for member, url in r.balancers.items()]
    lines.append("  monitors:")
    lines += [f"    {member}: {url}" for member, url in r.monitors.items()]
    lines.append("  next: `poactl status`, and `poactl down` to stop")
    return "\n".join(lines)


@main.command()
@state_dir_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@handles_errors
def status(state_dir: Path, fmt: str) -> None:
    """Show every node: role, RPC URL, signer, block, peers, health. Exit 2 if degraded."""
    report = LocalConsortium(state_dir).status()
    click.echo(json.dumps(report.as_dict(), indent=2) if fmt == "json" else _table(report))
    sys.exit(EXIT_OK if report.healthy else EXIT_DEGRADED)


def _table(report: ConsortiumStatus) -> str:
    header = ("NODE", "MEMBER", "STATE", "BLOCK", "PEERS", "HEALTH", "RPC", "SIGNER")
    rows = [header]
    for n in report.nodes:
        d = n.as_dict()
        rows.append((
            d["name"] + (" (leader)" if d["leader"] else ""), d["member"], d["state"],
            "-" if d["block"] is None else str(d["block"]),
            "-" if d["peers"] is None else str(d["peers"]),
            "ok" if d["healthy"] else "; ".join(d["problems"]) or d["state"].lower(),
            d["rpc_url"], d["signer"] or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    body = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    verdict = "healthy" if report.healthy else "DEGRADED"
    leases = [
        f"  {r.member} {r.lease}: {r.holder or 'NOT HELD'}" + (f" ({r.signer})" if r.signer else "")
        for r in report.leases
    ]
    monitors = [
        f"  {m['member']}: {m['url']}" + ("" if m["running"] else " (not running)")
        for m in report.monitors
    ]
    balancers = [
        f"  {b['member']}: {b['url']} in rotation: {', '.join(b['in_rotation']) or 'none'}"
        + (f"; out: {', '.join(b['out_of_rotation'])}" if b["out_of_rotation"] else "")
        + ("" if b["running"] else " (not running)")
        + f"; token: {b['token_file']}"
        for b in report.balancers
    ]
    sections = [*body, "leases:", *leases, "monitors:", *monitors]
    if balancers:
        sections += ["balancers:", *balancers]
    return "\n".join([f"chain {report.chain_id}: {verdict}", *sections])


@main.command()
@state_dir_option
@handles_errors
def down(state_dir: Path) -> None:
    """Stop every node cleanly; keep keys and chain data (`up` resumes the same chain)."""
    stopped = LocalConsortium(state_dir).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@main.command()
@state_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handles_errors
def destroy(state_dir: Path, yes: bool) -> None:
    """Stop everything and delete the state dir: keys, chain data and logs."""
    if not yes:
        click.confirm(f"Delete {state_dir} with all its keys and chain data?", abort=True)
    LocalConsortium(state_dir).destroy()
    click.echo(f"destroyed {state_dir}")


@main.command()
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


main.add_command(_service_command(
    "monitor", run_monitor,
    "Run a bank's monitor in the foreground: page, JSON API and /metrics (`up` starts one "
    "per bank).",
))  # fmt: skip
main.add_command(_service_command(
    "balancer", run_balancer,
    "Run a bank's load balancer in the foreground: HAProxy and the JSON-RPC filter (`up` "
    "starts one per bank when the consortium file has `balancer:`).",
))  # fmt: skip


@main.command()
@state_dir_option
@click.argument("node")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines as geth writes them.")
@click.option("--lines", "-n", type=int, default=50, show_default=True, help="Lines to show first.")
@click.option(
    "--agent", "which", flag_value="agent", help="Show the agent's log instead of geth's."
)
@handles_errors
def logs(state_dir: Path, node: str, follow: bool, lines: int, which: str | None) -> None:
    """Show a node's geth log (or its agent's log with --agent)."""
    paths = LocalConsortium(state_dir).node_paths(node)
    path = paths.agent_log if which == "agent" else paths.geth_log
    for line in log_tail(path, lines):
        click.echo(line)
    if follow:
        for line in follow_file(path):
            click.echo(line)


# -- credit records: the registry, the demo, and `credit` on the local consortium's banks
main.add_command(contracts)
main.add_command(demo)
main.add_command(credit)
