"""`poactl up | status | down | destroy | logs`: the local consortium on this machine.
Parse, call `LocalConsortium`, render.

Exit codes: 0 ok (all healthy), 1 error, 2 degraded (`status` with an unhealthy node).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from orchestrator.cli.common import handles_errors, state_dir_option
from orchestrator.cli.contracts import deploy_after_up
from orchestrator.local.consortium import UP_TIMEOUT_SECONDS, LocalConsortium, UpResult
from orchestrator.local.report import ConsortiumStatus
from orchestrator.logs import follow_file, log_tail

EXIT_OK, EXIT_ERROR, EXIT_DEGRADED = 0, 1, 2

geth_option = click.option(
    "--geth",
    envvar="POACTL_GETH",
    default=None,
    help="geth 1.13.15 binary [default: .tools/bin/geth from scripts/setup.sh, else PATH].",
)


@click.command()
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


@click.command()
@click.option(
    "--from", "url", required=True, metavar="URL",
    help="A member's consortium data: a directory, file:// URL or read-only SAS URL.",
)  # fmt: skip
@click.option("--member", required=True, help="This bank's member name in the network.")
@click.option(
    "--validators", type=click.IntRange(0, 16), default=None,
    help="Validator identities of this bank [default: 1, or the --config file's].",
)  # fmt: skip
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A consortium file listing only this bank (its ports, runtime, tuning); the "
    "chain's parameters come from the network.",
)
@state_dir_option
@geth_option
@click.option("--timeout", type=float, default=UP_TIMEOUT_SECONDS, show_default=True)
@handles_errors
def join(
    *,
    url: str,
    member: str,
    validators: int | None,
    config: Path | None,
    state_dir: Path,
    geth: str | None,
    timeout: float,
) -> None:
    """Join a running network as a new bank, from this bank's own (new) state dir."""
    from orchestrator.local.join import join as join_network

    local = LocalConsortium(state_dir, geth=geth)
    r = join_network(
        local, url=url, member=member, validators=validators, config=config, timeout=timeout,
        on_progress=lambda line: click.echo(f"  … {line}"),
    )  # fmt: skip
    click.echo(_render_up(r.up, state_dir).split("\n  next:")[0])
    if r.ports is not None:
        shown = ", ".join(f"{kind} {port}" for kind, port in r.ports)
        click.echo(f"  base ports (free on this machine; the defaults where free): {shown}")
    click.echo(
        f"  {member} follows the chain (block {r.up.head}) and publishes its consortium data "
        f"at {r.data_url}\n"
        f"  admin {r.member.admin}; validators {', '.join(r.member.signers) or 'none'}\n"
        f"  next: a member proposes it, `poactl members propose {member} --data "
        f"{r.data_url} --as BANK`, and the members vote; once admitted, {member}'s "
        "validators are seated and seal"
    )


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
    if r.indexes:
        lines.append("  read indexes (the credit reads of each bank):")
        lines += [f"    {member}: {url}" for member, url in r.indexes.items()]
    lines.append("  next: `poactl status`, and `poactl down` to stop")
    return "\n".join(lines)


@click.command()
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
    read_indexes = [
        f"  {i['member']}: {i['url']} "
        + ("-" if i["block"] is None else f"block {i['block']}, {i['behind']} behind its node")
        + (f", {i['logs']} logs" if i["logs"] is not None else "")
        + (" (rebuilding)" if i["rebuilding"] else "")
        + "".join(f"; {p}" for p in i["problems"])
        for i in report.indexes
    ]
    sections = [*body, "leases:", *leases, "monitors:", *monitors]
    if read_indexes:
        sections += ["read indexes:", *read_indexes]
    validators = report.validators
    if validators is not None:
        verdict_v = "match" if validators["match"] else "DIFFER: votes in flight"
        sections += [
            f"validators ({verdict_v}):",
            f"  decided by governance: {', '.join(validators['decided']) or 'none'}",
            f"  sealing in Clique:     {', '.join(validators['sealing']) or 'none'}",
            *(
                f"  {node} votes: "
                + ", ".join(f"{'add' if add else 'drop'} {a}" for a, add in votes.items())
                for node, votes in validators["votes"].items()
            ),
        ]
    if balancers:
        sections += ["balancers:", *balancers]
    return "\n".join([f"chain {report.chain_id}: {verdict}", *sections])


@click.command()
@state_dir_option
@handles_errors
def down(state_dir: Path) -> None:
    """Stop every node cleanly; keep keys and chain data (`up` resumes the same chain)."""
    stopped = LocalConsortium(state_dir).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@click.command()
@state_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handles_errors
def destroy(state_dir: Path, yes: bool) -> None:
    """Stop everything and delete the state dir: keys, chain data and logs."""
    if not yes:
        click.confirm(f"Delete {state_dir} with all its keys and chain data?", abort=True)
    LocalConsortium(state_dir).destroy()
    click.echo(f"destroyed {state_dir}")


@click.command()
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
