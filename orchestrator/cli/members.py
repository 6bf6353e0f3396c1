"""`members`: who the consortium's members are, and their votes, on the Governance
contract. List with `poactl members`; an admin votes with `members vote NAME --as BANK`
(`--approve`, `--reject`, or `--remove` to propose voting NAME out) and takes a ballot
back with `members withdraw NAME --as BANK`. Each write is signed with the bank's admin
key from its own vault and waits for its block; a refusal names the rule.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import handles_errors, state_dir_option
from orchestrator.errors import ConfigError
from orchestrator.governance import Governance, ProposalView
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import (
    bank_governance,
    read_joining_member,
    seal_pseudonym_secret,
    sealing_signers,
)
from orchestrator.network.data import directory_entry, shown_url
from orchestrator.network.names import directory_blob

as_option = click.option(
    "--as", "bank", required=True, metavar="BANK", help="The bank whose admin key signs."
)
# A subcommand's own --state-dir (after its name) wins over the group's.
sub_state_dir_option = click.option(
    "--state-dir", "sub_state_dir", type=click.Path(file_okay=False, path_type=Path),
    default=None, help="As for `poactl members`.",
)  # fmt: skip


@click.group(invoke_without_command=True)
@state_dir_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
@handles_errors
def members(ctx: click.Context, state_dir: Path, fmt: str) -> None:
    """List members, admins, validators (decided and sealing), writers and open proposals."""
    ctx.obj = state_dir
    if ctx.invoked_subcommand is not None:
        return
    local = LocalConsortium(state_dir)
    report = _report(bank_governance(local), sealing_signers(local), _data_urls(local))
    click.echo(json.dumps(report, indent=2) if fmt == "json" else _render(report))


def _data_urls(local: LocalConsortium) -> dict[str, str]:
    """Where each bank this state dir knows publishes its consortium data."""
    urls = {m: local.data_url(m) for m in local.load().members()}
    return {**local.joined_from(), **urls, **local.proposed_data()}


def _report(
    gov: Governance, sealing: list[str] | None, data_urls: dict[str, str]
) -> dict[str, Any]:
    signing = {a.lower() for a in sealing or []}
    return {
        "governance": gov.address,
        "threshold": gov.threshold(),
        "rules": gov.rules(),
        "members": [
            {
                "name": m.name, "admin": m.admin, "since_block": m.since,
                "validators": [
                    {"address": v, "sealing": v.lower() in signing} for v in m.validators
                ],
                "writers": list(m.writers),
                "data_url": shown_url(data_urls[m.name]) if m.name in data_urls else None,
            }
            for m in gov.members()
        ],
        "sealing_signers": sealing,
        "open_proposals": [dataclasses.asdict(p) for p in gov.proposals(open_only=True)],
    }  # fmt: skip


def _render(r: dict[str, Any]) -> str:
    lines = [f"governance {r['governance']}: {_count(len(r['members']), 'member')}, "
             f"{r['threshold']} decide"]  # fmt: skip
    for m in r["members"]:
        lines.append(f"  {m['name']}  admin {m['admin']}  data {m['data_url'] or 'unknown'}")
        for v in m["validators"]:
            shown = "sealing" if v["sealing"] else "NOT sealing"
            lines.append(f"    validator {v['address']} ({shown})")
        lines += [f"    writer    {w}" for w in m["writers"]]
    lines.append("open proposals:" if r["open_proposals"] else "open proposals: none")
    for p in r["open_proposals"]:
        lines.append(
            f"  #{p['id']} {p['kind']} {p['name']} ({p['target']}), until block {p['expires']}: "
            f"for {len(p['approvals'])}, against {len(p['rejections'])}"
        )
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _open_proposal(gov: Governance, name: str) -> ProposalView:
    """The open proposal about member NAME, or the proposal `#ID`."""
    if name.startswith("#") and name[1:].isdigit():
        found = [p for p in gov.proposals(open_only=True) if p.id == int(name[1:])]
    else:
        found = [p for p in gov.proposals(open_only=True) if p.name == name]
    if not found:
        raise ConfigError(
            f"no open proposal about {name!r}",
            obj=name,
            hint="`poactl members` lists the open proposals (a proposal made in the last "
            "block may not have reached your node yet: retry); `--remove` proposes a removal",
        )
    if len(found) > 1:
        ids = ", ".join(f"#{p.id}" for p in found)
        raise ConfigError(
            f"{len(found)} open proposals are about {name!r}: {ids}",
            obj=name,
            hint="name the one to vote on by its id, e.g. `poactl members vote #3 ...`",
        )
    return found[0]


@members.command()
@click.argument("name")
@as_option
@click.option("--approve", "choice", flag_value="approve", help="Vote for the proposal.")
@click.option("--reject", "choice", flag_value="reject", help="Vote against it.")
@click.option("--remove", "choice", flag_value="remove", help="Propose voting NAME out.")
@sub_state_dir_option
@click.pass_obj
@handles_errors
def vote(
    state_dir: Path, name: str, bank: str, choice: str | None, sub_state_dir: Path | None
) -> None:
    """Vote on the open proposal about NAME (or `#ID`) as BANK's admin, or propose NAME's
    removal."""
    if choice is None:
        raise ConfigError("say how to vote", obj="vote", hint="--approve, --reject or --remove")
    gov = bank_governance(LocalConsortium(sub_state_dir or state_dir), bank)
    if choice == "remove":
        admins = {m.name: m.admin for m in gov.members()}
        if name not in admins:
            raise ConfigError(f"{name!r} is not a member", obj=name, hint="see `poactl members`")
        inclusion = gov.propose_remove(admins[name]).wait(timeout=60)
        at = inclusion.block_number  # behind a balancer, the next read may reach any node
        proposal = gov.proposal(gov.proposal_count(block=at) - 1, block=at)
    else:
        proposal = _open_proposal(gov, name)
        inclusion = gov.vote(proposal.id, approve=choice == "approve").wait(timeout=60)
        proposal = gov.proposal(proposal.id, block=inclusion.block_number)
    head = f"{bank} voted ({choice}) on #{proposal.id} {proposal.kind} {name} in block "
    if proposal.status == "open":
        tally = (
            f"open, for {len(proposal.approvals)}, against {len(proposal.rejections)} "
            f"({gov.threshold()} decide)"
        )
    else:  # decided by this ballot; a removed member's ballots no longer count
        members_now = len(gov.members(block=inclusion.block_number))
        tally = f"{proposal.status}; {_count(members_now, 'member')} now"
        if proposal.status == "refused":
            tally += (
                "\n  the removal would leave fewer validators than the consortium's floor; "
                "the other members add validators first (docs/governance.md)"
            )
        if proposal.kind == "add" and proposal.status == "approved":
            tally += (
                f"\n  next: `poactl members share-secret {name} --as BANK` gives it the "
                "pseudonym secret, sealed to its admin key"
            )
    click.echo(f"{head}{inclusion.block_number}: {tally}")


GAS_MONEY_WEI = 10**20  # 100 ether: a joining bank's first transactions (gas price ~1 gwei)


@members.command()
@click.argument("name")
@as_option
@click.option(
    "--data", "url", required=True, metavar="URL",
    help="Where the joining bank publishes its consortium data (`poactl join` prints it).",
)  # fmt: skip
@sub_state_dir_option
@click.pass_obj
@handles_errors
def propose(state_dir: Path, name: str, bank: str, url: str, sub_state_dir: Path | None) -> None:
    """Propose the bank NAME, which joined from its own state dir, as a member: read its
    published descriptor, give its admin and writer accounts gas money from BANK's admin,
    and file the proposal (BANK's approval)."""
    local = LocalConsortium(sub_state_dir or state_dir)
    gov = bank_governance(local, bank)
    info = read_joining_member(url, name)
    if gov.is_member(info.admin):
        raise ConfigError(f"{name!r} is already a member", obj=name, hint="see `poactl members`")
    # The proposal first: a refusal (a taken name, a pending proposal) costs no money.
    inclusion = gov.propose_add(info.admin, name).wait(timeout=60)
    local.record_proposed_data(name, url)
    # Where the new bank publishes, in BANK's directory: the members' agents find it there.
    local.store(bank).write(directory_blob(bank, name), directory_entry(name, url))
    for account in (info.admin, info.tx_account):
        gov.fund(account, GAS_MONEY_WEI).wait(timeout=60)
    at = inclusion.block_number
    proposal = max(
        (p for p in gov.proposals(block=at) if p.target == info.admin and p.kind == "add"),
        key=lambda p: p.id,
    )
    click.echo(
        f"{bank} proposed #{proposal.id} add {name} ({info.admin}) in block {at}: "
        f"{proposal.status}, for {len(proposal.approvals)} ({gov.threshold()} decide); "
        f"gave {GAS_MONEY_WEI // 10**18} ether of gas money to {info.admin} and "
        f"{info.tx_account}\n  next: the other members vote, "
        f"`poactl members vote {name} --approve --as BANK`"
    )


@members.command("share-secret")
@click.argument("name")
@as_option
@click.option(
    "--data", "url", default=None, metavar="URL",
    help="NAME's consortium data URL [default: the one `members propose` recorded].",
)  # fmt: skip
@sub_state_dir_option
@click.pass_obj
@handles_errors
def share_secret(
    state_dir: Path, name: str, bank: str, url: str | None, sub_state_dir: Path | None
) -> None:
    """Give the admitted member NAME the consortium's pseudonym secret, sealed to NAME's
    admin key (as the members admitted it) and published in BANK's consortium data."""
    local = LocalConsortium(sub_state_dir or state_dir)
    admin = {m.name: m.admin for m in bank_governance(local, bank).members()}.get(name)
    if admin is None:
        raise ConfigError(
            f"{name!r} is not a member: the secret goes only to an admitted bank",
            obj=name,
            hint="see `poactl members`; the members vote first",
        )
    url = url or local.proposed_data().get(name)
    if url is None:
        raise ConfigError(
            f"where {name} publishes is not known here", obj=name, hint="pass --data URL"
        )
    sealed = seal_pseudonym_secret(local, bank, name, admin=admin, url=url)
    click.echo(
        f"{bank} sealed the pseudonym secret to {name}'s admin {admin} and published it "
        f"as {sealed}; {name}'s leader takes it into {name}'s vault"
    )


@members.command()
@click.argument("name")
@as_option
@sub_state_dir_option
@click.pass_obj
@handles_errors
def withdraw(state_dir: Path, name: str, bank: str, sub_state_dir: Path | None) -> None:
    """Take back BANK's ballot on the open proposal about NAME."""
    gov = bank_governance(LocalConsortium(sub_state_dir or state_dir), bank)
    proposal = _open_proposal(gov, name)
    inclusion = gov.withdraw_vote(proposal.id).wait(timeout=60)
    click.echo(f"{bank} withdrew its ballot on #{proposal.id} in block {inclusion.block_number}")
