"""`credit` commands: report, get, history, dispute, resolve, furnish. Parse, call the SDK,
render.

Which endpoint, registry and keys a bank uses comes from a `BankResolver`. A parent
command can put one in `ctx.meta[RESOLVER_KEY]`, or a factory in
`ctx.meta[RESOLVER_FACTORY_KEY]` that makes one for a state dir (the main CLI's: the
local consortium in `--state-dir`, given to `credit` or to its command); explicit options
(`--rpc-url`, `--registry`, `--key-file`, `--secret-file`) override it field by field,
and alone they are enough (the resolver is then not consulted at all).

`--subject` takes a national ID, which is turned into the pseudonym here and never sent,
or a pseudonym itself (0x + 64 hex digits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from orchestrator.boundaries import Secret
from orchestrator.cli.common import RESOLVER_FACTORY_KEY, F, handles_errors
from orchestrator.credit import codes
from orchestrator.credit.access import BankAccess, BankResolver
from orchestrator.credit.client import CreditClient
from orchestrator.credit.furnish import BATCH_RECORDS, FurnishResult, furnish_file
from orchestrator.credit.pseudonym import check_subject
from orchestrator.credit.records import (
    CreditFile,
    HistoryEntry,
    ReadFrom,
    Record,
    Tradeline,
    record_from_mapping,
    record_to_mapping,
)
from orchestrator.errors import ConfigError
from orchestrator.geth.tx import PendingTx, check_address
from orchestrator.network.names import account_ref_key_name

RESOLVER_KEY = "poactl.credit.resolver"  # a BankResolver
STATE_DIR_KEY = "poactl.credit.state_dir"  # the --state-dir given, if any
_OPTIONS_KEY = "poactl.credit.options"  # the OptionsResolver the commands use
PROBLEMS_SHOWN = 20  # refused lines listed by `furnish` in text; --format json has all


ResolverFactory = Callable[[Path | None], BankResolver]  # state dir (None: default) -> it


def read_secret_file(path: Path, option: str) -> Secret:
    """A secret from a file readable by its owner alone (like ssh's private keys)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read {option}: {e.strerror}", obj=str(path), hint=f"check {option}"
        ) from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{option} is readable by other users",
            obj=str(path),
            hint=f"chmod 600 {path}",
        )
    if not text:
        raise ConfigError(f"{option} is empty", obj=str(path), hint=f"check {option}")
    return Secret(text)


@dataclass(frozen=True)
class OptionsResolver:
    """Explicit options first, then the fallback resolver (if any) for what is missing.

    `fallback` is called (and its resolver asked) only when an option is missing.
    """

    rpc_url: str | None = None
    token_file: Path | None = None
    registry: str | None = None
    key_file: Path | None = None
    secret_file: Path | None = None
    account_ref_key_file: Path | None = None
    fallback: Callable[[], BankResolver | None] | None = None

    def resolve(self, bank: str) -> BankAccess:
        given = (self.rpc_url, self.registry, self.key_file, self.secret_file)
        resolver = None
        if self.fallback is not None and any(v is None for v in given):
            resolver = self.fallback()
        base = resolver.resolve(bank) if resolver is not None else None

        def need(value: Any, option: str, from_base: Any) -> Any:
            if value is not None:
                return value
            if base is not None:
                return from_base
            raise ConfigError(
                f"no {option} for {bank}",
                obj=option,
                hint=f"pass {option} (or its environment variable, see --help)",
            )

        return BankAccess(
            rpc_url=need(self.rpc_url, "--rpc-url", base and base.rpc_url),
            registry=need(self.registry, "--registry", base and base.registry),
            account_key=(
                read_secret_file(self.key_file, "--key-file")
                if self.key_file is not None
                else need(None, "--key-file", base and base.account_key)
            ),
            pseudonym_secret=(
                read_secret_file(self.secret_file, "--secret-file")
                if self.secret_file is not None
                else need(None, "--secret-file", base and base.pseudonym_secret)
            ),
            names=base.names if base is not None else {},
            registry_block=base.registry_block if base is not None else 0,
            account_ref_key=(
                read_secret_file(self.account_ref_key_file, "--account-ref-key-file")
                if self.account_ref_key_file is not None
                else (base.account_ref_key if base is not None else None)
            ),
            rpc_token=(
                read_secret_file(self.token_file, "--token-file")
                if self.token_file is not None
                else (base.rpc_token if base is not None and self.rpc_url is None else None)
            ),
            index_url=base.index_url if base is not None and self.rpc_url is None else None,
        )


# -- plumbing -------------------------------------------------------------------------


def _access(bank: str) -> tuple[CreditClient, BankAccess]:
    resolver: BankResolver = click.get_current_context().meta[_OPTIONS_KEY]
    access = resolver.resolve(bank)
    client = CreditClient.of(access)
    return client, access


def _subject(client: CreditClient, text: str) -> bytes:
    if text.startswith("0x") and len(text) == 66:
        return check_subject(text)
    return client.subject(text)


def _furnisher(text: str, access: BankAccess) -> str:
    """An address, or a bank name the resolver knows (its admin account, the furnisher:
    `names` lists a bank's admin after its writer account, so the admin wins)."""
    by_name = {name: address for address, name in access.names.items()}
    return str(check_address("--furnisher", by_name.get(text, text)))


def load_record_file(path: Path) -> Record:
    """A Record from YAML or JSON; every scalar read as text, so "00" stays "00"."""
    try:
        data = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # noqa: S506 (BaseLoader is safe)
    except OSError as e:
        raise ConfigError(f"cannot read the record: {e.strerror}", obj=str(path)) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"the record is not valid YAML: {e}", obj=str(path)) from e
    return record_from_mapping(data)


def _finish(pending: PendingTx, wait: bool, confirmations: int, timeout: float) -> str:
    if not wait:
        return f"sent {pending.tx_hash} (nonce {pending.nonce}); not waiting for inclusion"
    inclusion = pending.wait(confirmations=confirmations, timeout=timeout)
    return (
        f"tx {inclusion.tx_hash} in block {inclusion.block_number} "
        f"(gas {inclusion.gas_used}, {confirmations} confirmations)"
    )


def _short(subject: bytes) -> str:
    return "0x" + subject.hex()


def _bank(address: str, access: BankAccess) -> str:
    return access.names.get(address, address)


def _tradeline_json(t: Tradeline, access: BankAccess) -> dict[str, Any]:
    return {
        "furnisher": t.furnisher,
        "bank": access.names.get(t.furnisher),
        "version": t.version,
        "updated_at": t.updated_at.isoformat(),
        "disputed": t.disputed,
        "record": record_to_mapping(t.record),
    }


def _render_file(credit_file: CreditFile, access: BankAccess) -> str:
    s = credit_file.summary
    lines = [
        f"subject {_short(credit_file.subject)} at block {credit_file.block_number}"
        + _read_note(credit_file.read)
    ]
    header: tuple[str, ...] = ("BANK", "ACCOUNT", "PT", "TYPE", "OPENED", "LIMIT/HIGH")
    header += ("BALANCE", "PAST DUE", "STATUS", "HISTORY", "CCC", "AS OF", "V")
    rows = [header]
    for t in credit_file.tradelines:
        r = t.record
        rows.append(
            (
                _bank(t.furnisher, access),
                r.account_ref,
                r.portfolio_type,
                r.account_type,
                r.date_opened.isoformat(),
                f"{r.credit_limit}/{r.highest_credit}",
                str(r.current_balance),
                str(r.amount_past_due),
                r.account_status,
                r.payment_history,
                r.compliance_condition or "-",
                r.date_of_account_information.isoformat(),
                str(t.version),
            )
        )
    if credit_file.tradelines:
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    else:
        lines.append("no tradelines")
    worst = (
        f"{s.worst_status} ({codes.STATUS[s.worst_status].description})"
        if s.worst_status in codes.STATUS
        else "-"
    )
    lines.append(
        f"summary: {s.accounts} accounts ({s.open_accounts} open) from {s.furnishers} banks, "
        f"balance {s.total_balance}, past due {s.total_past_due}, worst status {worst}, "
        f"{s.delinquencies} delinquent, {s.late_months} late months in 24, "
        f"{s.disputed} disputed"
    )
    return "\n".join(lines)


def _read_note(read: ReadFrom | None) -> str:
    """Where a read came from: the bank's read index (and how far behind) or its node."""
    if read is None or read.source == "node":
        return " (read from the node)"
    return f" (read from the bank's read index, {read.behind} blocks behind the node)"


def _render_history(entries: list[HistoryEntry], access: BankAccess) -> str:
    if not entries:
        return "no history"
    lines = []
    for e in entries:
        r = e.tradeline.record
        lines.append(
            f"block {e.block_number}  v{e.tradeline.version}  {e.change:<8}  "
            f"by {_bank(e.by, access)}  {_bank(e.tradeline.furnisher, access)}/{r.account_ref}  "
            f"status {r.account_status}  balance {r.current_balance}  "
            f"past due {r.amount_past_due}  ccc {r.compliance_condition or '-'}  {e.tx_hash}"
        )
    return "\n".join(lines)


# -- commands -------------------------------------------------------------------------

bank_option = click.option("--bank", required=True, help="The bank acting (its name).")
subject_option = click.option(
    "--subject",
    required=True,
    help="National ID (hashed here into the pseudonym, never sent) or a 0x pseudonym.",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def _remember_state_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[STATE_DIR_KEY] = value


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="POACTL_STATE_DIR",
    expose_value=False,
    callback=_remember_state_dir,
    help="The local consortium whose banks --bank names [default: $POACTL_STATE_DIR, "
    "else poactl's default state dir].",
)


def _fallback(ctx: click.Context) -> BankResolver | None:
    """The parent's resolver, or one made by its factory for the --state-dir given."""
    ready: BankResolver | None = ctx.meta.get(RESOLVER_KEY)
    if ready is not None:
        return ready
    factory: ResolverFactory | None = ctx.meta.get(RESOLVER_FACTORY_KEY)
    return None if factory is None else factory(ctx.meta.get(STATE_DIR_KEY))


own_furnisher_option = click.option(
    "--furnisher",
    default=None,
    help="The tradeline's bank (name or address) [default: this bank]. The registry lets "
    "a bank write only its own: another bank is refused (NotFurnisher).",
)


def wait_options(fn: F) -> F:
    fn = click.option("--timeout", type=float, default=60.0, show_default=True)(fn)
    fn = click.option("--confirmations", type=click.IntRange(min=0), default=0, show_default=True)(
        fn
    )
    return click.option("--wait/--no-wait", default=True, help="Wait for inclusion.")(fn)


@click.group("credit")
@click.option(
    "--rpc-url", envvar="POACTL_CREDIT_RPC_URL", help="The bank's JSON-RPC URL (its balancer)."
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_TOKEN_FILE",
    help="File with the application's token for the bank's balancer (mode 600).",
)
@click.option("--registry", envvar="POACTL_CREDIT_REGISTRY", help="CreditRegistry address.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_KEY_FILE",
    help="File with the bank's account private key (hex; mode 600).",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_SECRET_FILE",
    help="File with the consortium's pseudonym secret (mode 600).",
)
@click.option(
    "--account-ref-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_ACCOUNT_REF_KEY_FILE",
    help="File with the bank's account-reference key (furnish; mode 600).",
)
@state_dir_option
@click.pass_context
def credit(
    ctx: click.Context,
    *,
    rpc_url: str | None,
    token_file: Path | None,
    registry: str | None,
    key_file: Path | None,
    secret_file: Path | None,
    account_ref_key_file: Path | None,
) -> None:
    """Credit records: report, read, dispute and resolve tradelines."""
    ctx.meta[_OPTIONS_KEY] = OptionsResolver(
        rpc_url=rpc_url,
        token_file=token_file,
        registry=registry,
        key_file=key_file,
        secret_file=secret_file,
        account_ref_key_file=account_ref_key_file,
        fallback=functools.partial(_fallback, ctx),
    )


@credit.command()
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
    client, access = _access(bank)
    owner = None if furnisher is None else _furnisher(furnisher, access)
    pending = client.report(_subject(client, subject), record, furnisher=owner)
    click.echo(
        f"{bank} reported {record.account_ref}: {_finish(pending, wait, confirmations, timeout)}"
    )


@credit.command()
@bank_option
@subject_option
@state_dir_option
@format_option
@handles_errors
def get(bank: str, subject: str, fmt: str) -> None:
    """Every tradeline of a subject across all banks, from this bank's read index (as of
    its node's head) or its node."""
    client, access = _access(bank)
    credit_file = client.get(_subject(client, subject), min_block="head")
    if fmt == "json":
        read = credit_file.read
        doc = {
            "subject": _short(credit_file.subject),
            "block_number": credit_file.block_number,
            "read": None if read is None else {"source": read.source, "behind": read.behind},
            "summary": dataclasses.asdict(credit_file.summary),
            "tradelines": [_tradeline_json(t, access) for t in credit_file.tradelines],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(_render_file(credit_file, access))


@credit.command()
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
    client, access = _access(bank)
    entries = client.history(
        _subject(client, subject),
        furnisher=None if furnisher is None else _furnisher(furnisher, access),
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
                **_tradeline_json(e.tradeline, access),
            }
            for e in entries
        ]
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(_render_history(entries, access) + "\n" + _read_note(client.last_read).strip())


@credit.command()
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
    client, access = _access(bank)
    owner = _furnisher(furnisher, access)
    pending = client.dispute(_subject(client, subject), owner, account_ref, code)
    shown = _finish(pending, wait, confirmations, timeout)
    click.echo(f"{bank} disputed {_bank(owner, access)}/{account_ref} ({code}): {shown}")


@credit.command()
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
    client, access = _access(bank)
    owner = None if furnisher is None else _furnisher(furnisher, access)
    pending = client.resolve(_subject(client, subject), account_ref, code, furnisher=owner)
    click.echo(
        f"{bank} resolved {account_ref} ({code}): {_finish(pending, wait, confirmations, timeout)}"
    )


@credit.command()
@bank_option
@state_dir_option
@click.option(
    "--file",
    "furnishing_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Metro 2 (426-character base segments between a header and a trailer) or JSON Lines.",
)
@click.option(
    "--batch",
    "batch_records",
    type=click.IntRange(1, 500),
    default=BATCH_RECORDS,
    show_default=True,
    help="Records per transaction.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handles_errors
def furnish(
    *, bank: str, furnishing_file: Path, batch_records: int, timeout: float, fmt: str
) -> None:
    """Furnish the bank's file of accounts: validate, pseudonymize, write what is missing.

    Lines that fail validation are listed (line, field, rule) and the others still go;
    the exit status is then 1. Run it again after any failure: it writes only what the
    chain does not hold yet and never writes a version twice.
    """
    client, access = _access(bank)
    if access.account_ref_key is None:
        raise ConfigError(
            f"no account-reference key for {bank}",
            obj=account_ref_key_name(bank),
            hint="the bank's leader agent creates it in the bank's vault with its other keys "
            "(restart the agents, or `poactl up`); outside the consortium's machine pass "
            "--account-ref-key-file",
        )
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []  # click's ProgressBar, once the plan is known

        def planned(result: FurnishResult, to_send: int) -> None:
            if fmt != "text":
                return
            click.echo(
                f"{furnishing_file.name} ({result.file_format}): {result.read} good records, "
                f"{len(result.problems)} refused, {result.unchanged} already on chain; "
                f"writing {to_send} in batches of {batch_records}",
                err=True,
            )
            bars.append(stack.enter_context(click.progressbar(length=to_send, file=sys.stderr)))

        def advanced(records: int) -> None:
            for bar in bars:
                bar.update(records)

        result = furnish_file(
            client,
            furnishing_file,
            account_ref_key=access.account_ref_key,
            batch_records=batch_records,
            timeout=timeout,
            progress=advanced,
            on_plan=planned,
        )
    if fmt == "json":
        doc = dataclasses.asdict(result) | {"records_per_second": result.records_per_second}
        doc["problems"] = [dataclasses.asdict(p) for p in result.problems]
        click.echo(json.dumps(doc, indent=2))
    else:
        per_record = result.gas_used // result.written if result.written else 0
        click.echo(
            f"{bank} furnished {result.written} records in {result.batches} transactions "
            f"({result.seconds:.1f} s, {result.records_per_second:.0f} records/s, "
            f"{per_record:,} gas per record); {result.unchanged} were already on chain"
        )
        for problem in result.problems[:PROBLEMS_SHOWN]:
            click.echo(f"refused: {problem}")
        if len(result.problems) > PROBLEMS_SHOWN:
            click.echo(f"... and {len(result.problems) - PROBLEMS_SHOWN} more (--format json)")
    if result.problems:
        raise SystemExit(1)
