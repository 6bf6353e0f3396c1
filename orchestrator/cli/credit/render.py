"""How the `credit` commands show tradelines, histories and transactions, and read a
record file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.credit import codes
from orchestrator.credit.access import BankAccess
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
from orchestrator.geth.tx import PendingTx


def load_record_file(path: Path) -> Record:
    """A Record from YAML or JSON; every scalar read as text, so "00" stays "00"."""
    try:
        data = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # noqa: S506 (BaseLoader is safe)
    except OSError as e:
        raise ConfigError(f"cannot read the record: {e.strerror}", obj=str(path)) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"the record is not valid YAML: {e}", obj=str(path)) from e
    return record_from_mapping(data)


def finish(pending: PendingTx, wait: bool, confirmations: int, timeout: float) -> str:
    if not wait:
        return f"sent {pending.tx_hash} (nonce {pending.nonce}); not waiting for inclusion"
    inclusion = pending.wait(confirmations=confirmations, timeout=timeout)
    return (
        f"tx {inclusion.tx_hash} in block {inclusion.block_number} "
        f"(gas {inclusion.gas_used}, {confirmations} confirmations)"
    )


def short(subject: bytes) -> str:
    return "0x" + subject.hex()


def bank_name(address: str, access: BankAccess) -> str:
    return access.names.get(address, address)


def tradeline_json(t: Tradeline, access: BankAccess) -> dict[str, Any]:
    return {
        "furnisher": t.furnisher,
        "bank": access.names.get(t.furnisher),
        "version": t.version,
        "updated_at": t.updated_at.isoformat(),
        "disputed": t.disputed,
        "record": record_to_mapping(t.record),
    }


def render_file(credit_file: CreditFile, access: BankAccess) -> str:
    s = credit_file.summary
    lines = [
        f"subject {short(credit_file.subject)} at block {credit_file.block_number}"
        + read_note(credit_file.read)
    ]
    header: tuple[str, ...] = ("BANK", "ACCOUNT", "PT", "TYPE", "OPENED", "LIMIT/HIGH")
    header += ("BALANCE", "PAST DUE", "STATUS", "HISTORY", "CCC", "AS OF", "V")
    rows = [header]
    for t in credit_file.tradelines:
        r = t.record
        rows.append(
            (
                bank_name(t.furnisher, access),
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


def read_note(read: ReadFrom | None) -> str:
    """Where a read came from: the bank's read index (and how far behind) or its node."""
    if read is None or read.source == "node":
        return " (read from the node)"
    return f" (read from the bank's read index, {read.behind} blocks behind the node)"


def render_history(entries: list[HistoryEntry], access: BankAccess) -> str:
    if not entries:
        return "no history"
    lines = []
    for e in entries:
        r = e.tradeline.record
        owner = bank_name(e.tradeline.furnisher, access)
        lines.append(
            f"block {e.block_number}  v{e.tradeline.version}  {e.change:<8}  "
            f"by {bank_name(e.by, access)}  {owner}/{r.account_ref}  "
            f"status {r.account_status}  balance {r.current_balance}  "
            f"past due {r.amount_past_due}  ccc {r.compliance_condition or '-'}  {e.tx_hash}"
        )
    return "\n".join(lines)
