"""`credit report|get|history|dispute|resolve`: one tradeline's commands. Parse, call
the SDK, render."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from orchestrator.cli.common import handles_errors
from orchestrator.cli.credit.options import (
    access_for,
    bank_option,
    format_option,
    furnisher_of,
    own_furnisher_option,
    state_dir_option,
    subject_of,
    subject_option,
    wait_options,
)
from orchestrator.cli.credit.render import (
    bank_name,
    finish,
    load_record_file,
    read_note,
    render_file,
    render_history,
    short,
    tradeline_json,
)
from orchestrator.credit import codes


@click.command()
@bank_option
@subject_option
@state_dir_option
@click.option(
    "--file",
    "record_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The record (YAML or JSON; fields as in docs/credit.md).",
)
@own_furnisher_option
@wait_options
@handles_errors
def report(
    *,
    bank: str,
    subject: str,
    record_file: Path,
    furnisher: str | None,
    wait: bool,
    confirmations: int,
    timeout: float,
) -> None:
    """Create or update the bank's own tradeline for a subject."""
    record = load_record_file(record_file)
    client, access = access_for(bank)
    owner = None if furnisher is None else furnisher_of(furnisher, access)
    pending = client.report(subject_of(client, subject), record, furnisher=owner)
    click.echo(
        f"{bank} reported {record.account_ref}: {finish(pending, wait, confirmations, timeout)}"
    )


@click.command()
@bank_option
@subject_option
@state_dir_option
@format_option
@handles_errors
def get(bank: str, subject: str, fmt: str) -> None:
    """Every tradeline of a subject across all banks, from this bank's read index (as of
    its node's head) or its node."""
    client, access = access_for(bank)
    credit_file = client.get(subject_of(client, subject), min_block="head")
    if fmt == "json":
        read = credit_file.read
        doc = {
            "subject": short(credit_file.subject),
            "read": None if read is None else {"source": read.source, "behind": read.behind},
            "block_number": credit_file.block_number,
            "summary": dataclasses.asdict(credit_file.summary),
            "tradelines": [tradeline_json(t, access) for t in credit_file.tradelines],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render_file(credit_file, access))


@click.command()
@bank_option
@subject_option
@state_dir_option
@click.option("--furnisher", default=None, help="Only this bank's tradelines (name or address).")
@click.option("--account-ref", default=None, help="Only this account reference.")
@format_option
@handles_errors
def history(
    *, bank: str, subject: str, furnisher: str | None, account_ref: str | None, fmt: str
) -> None:
    """Every change of a subject's tradelines, oldest first (rebuilt from the logs)."""
    client, access = access_for(bank)
    entries = client.history(
        subject_of(client, subject),
        furnisher=None if furnisher is None else furnisher_of(furnisher, access),
        account_ref=account_ref,
        min_block="head",
    )
    if fmt == "json":
        doc = [
            {
                "block_number": e.block_number,
                "tx_hash": e.tx_hash,
                "change": e.change,
                "by": e.by,
                **tradeline_json(e.tradeline, access),
            }
            for e in entries
        ]
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render_history(entries, access) + "\n" + read_note(client.last_read).strip())


@click.command()
@bank_option
@subject_option
@state_dir_option
@click.option("--furnisher", required=True, help="The bank that furnished the tradeline.")
@click.option("--account-ref", required=True, help="Its account reference.")
@click.option(
    "--code",
    type=click.Choice(sorted(codes.DISPUTE_OPEN)),
    default="XB",
    show_default=True,
    help="Compliance condition code of the dispute.",
)
@wait_options
@handles_errors
def dispute(
    *,
    bank: str,
    subject: str,
    furnisher: str,
    account_ref: str,
    code: str,
    wait: bool,
    confirmations: int,
    timeout: float,
) -> None:
    """Flag a consumer's dispute on a tradeline (any member bank may)."""
    client, access = access_for(bank)
    owner = furnisher_of(furnisher, access)
    pending = client.dispute(subject_of(client, subject), owner, account_ref, code)
    shown = finish(pending, wait, confirmations, timeout)
    click.echo(f"{bank} disputed {bank_name(owner, access)}/{account_ref} ({code}): {shown}")


@click.command()
@bank_option
@subject_option
@state_dir_option
@click.option("--account-ref", required=True, help="The bank's own account reference.")
@click.option(
    "--code",
    type=click.Choice(sorted(codes.DISPUTE_RESOLVE)),
    default="XH",
    show_default=True,
    help="XH investigated; XC/XE/XG consumer disagrees; XR remove the code.",
)
@own_furnisher_option
@wait_options
@handles_errors
def resolve(
    *,
    bank: str,
    subject: str,
    account_ref: str,
    code: str,
    furnisher: str | None,
    wait: bool,
    confirmations: int,
    timeout: float,
) -> None:
    """Close the open dispute on one of the bank's own tradelines."""
    client, access = access_for(bank)
    owner = None if furnisher is None else furnisher_of(furnisher, access)
    pending = client.resolve(subject_of(client, subject), account_ref, code, furnisher=owner)
    click.echo(
        f"{bank} resolved {account_ref} ({code}): {finish(pending, wait, confirmations, timeout)}"
    )
