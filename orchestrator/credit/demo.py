"""The seed's scenario in five steps, on a running consortium, with block numbers and timings.

1. Bank A's application builds a credit record; the subject is the pseudonym of a
   national ID, computed in Bank A's process (the ID is never printed nor sent).
2. Bank A signs the write locally with its own account key and sends it raw through its
   own endpoint (its node).
3. The network seals it in a block: which block, who sealed it, time from send to inclusion.
4. Bank B reads the subject's file from its own node: which node, how many blocks after
   inclusion, how long after Bank A saw it included, how long the read took.
5. The record Bank B read equals what Bank A sent, field for field; the subject's summary.

`run_demo` takes each bank's `BankAccess` and prints through `emit`; it returns the
figures as a `DemoResult`. Where the banks' endpoints and keys come from is the caller's
business (`orchestrator.local.registry` for the local consortium).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.credit import codes
from orchestrator.credit.access import BankAccess
from orchestrator.credit.client import CreditClient
from orchestrator.credit.records import CreditFile, Record, Summary, Tradeline
from orchestrator.errors import WaitTimeout

POLL_SECONDS = 0.02


@dataclass(frozen=True)
class DemoBank:
    name: str  # the bank
    node: str  # the node behind its endpoint (shown)
    access: BankAccess


@dataclass(frozen=True)
class DemoResult:
    subject: str  # 0x pseudonym
    account_ref: str
    tx_hash: str
    head_at_send: int
    block_number: int
    sealed_by: str | None
    send_seconds: float  # validate, estimate, sign, send
    send_to_inclusion: float
    read_block: int
    blocks_after_inclusion: int
    visible_after_inclusion: float  # from Bank A seeing the receipt to Bank B reading it
    read_seconds: float  # the one read that found it
    equal: bool
    summary: Summary


def demo_record(today: dt.date | None = None) -> Record:
    """A fresh installment loan, current, with a new account reference."""
    day = today or dt.date.today()
    return Record(
        account_ref=f"DEMO-{secrets.token_hex(4).upper()}",
        portfolio_type="I",
        account_type="00",
        date_opened=day - dt.timedelta(days=400),
        date_of_account_information=day,
        highest_credit=20_000,
        current_balance=15_000,
        account_status="11",
        payment_history="0" * 13 + "B" * 11,
    )


def demo_national_id() -> str:
    """A made-up national ID in the 999-xx-xxxx range (never issued)."""
    digits = f"{secrets.randbelow(10**6):06d}"
    return f"999-{digits[:2]}-{digits[2:]}"


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _client(bank: DemoBank) -> CreditClient:
    access = bank.access
    return CreditClient.of(access)


def summary_line(s: Summary) -> str:
    worst = (
        f"{s.worst_status} ({codes.STATUS[s.worst_status].description})"
        if s.worst_status in codes.STATUS
        else "-"
    )
    return (
        f"{s.accounts} accounts ({s.open_accounts} open) from {s.furnishers} banks, "
        f"balance {s.total_balance}, past due {s.total_past_due}, worst status {worst}, "
        f"{s.delinquencies} delinquent, {s.disputed} disputed"
    )


def run_demo(
    bank_a: DemoBank,
    bank_b: DemoBank,
    *,
    emit: Callable[[str], None],
    sealer_of: Callable[[int], str | None] | None = None,
    national_id: str | None = None,
    timeout: float = 30.0,
) -> DemoResult:
    """Bank A writes a record through its endpoint; Bank B reads it from its own node."""
    t_start = time.monotonic()
    a, b = _client(bank_a), _client(bank_b)

    emit(f"[1] {bank_a.name}'s application builds a credit record")
    t0 = time.perf_counter()
    subject = a.subject(national_id or demo_national_id())
    pseudonym_time = time.perf_counter() - t0
    record = demo_record()
    shown = "0x" + subject.hex()
    emit(
        f"    subject: pseudonym {shown} = HMAC-SHA256(consortium secret, national ID), "
        f"computed in {bank_a.name}'s process in {_ms(pseudonym_time)}; "
        "the national ID is neither shown nor sent"
    )
    emit(
        f"    record {record.account_ref}: installment loan (portfolio {record.portfolio_type}, "
        f"type {record.account_type}), opened {record.date_opened}, high credit "
        f"{record.highest_credit}, balance {record.current_balance}, status "
        f"{record.account_status}: {codes.STATUS[record.account_status].description}, "
        f"as of {record.date_of_account_information}"
    )

    emit(f"[2] {bank_a.name} signs it locally and sends it through its own endpoint")
    w3_a = a.sender.w3
    head_at_send = int(a.sender.rpc(lambda: w3_a.eth.block_number))
    t_send = time.monotonic()
    pending = a.report(subject, record)
    sent = time.monotonic()
    emit(
        f"    validated, gas-estimated, signed with {bank_a.name}'s account {a.address} "
        f"(EIP-1559, nonce {pending.nonce}) and sent raw to {bank_a.node} "
        f"({bank_a.access.rpc_url}) in {_ms(sent - t_send)}, head at block {head_at_send}"
    )
    emit(f"    tx {pending.tx_hash}")

    emit("[3] the network seals it in a block")
    inclusion = pending.wait(timeout=timeout, poll=POLL_SECONDS)
    included = time.monotonic()
    sealed_by = sealer_of(inclusion.block_number) if sealer_of is not None else None
    emit(
        f"    included in block {inclusion.block_number}"
        + (f", sealed by {sealed_by}" if sealed_by else "")
        + f", {_ms(included - t_send)} after sending ({inclusion.block_number - head_at_send} "
        f"blocks after the head at sending); gas used {inclusion.gas_used:,}"
    )

    emit(f"[4] {bank_b.name} reads it from its own node")
    found, credit_file, read_seconds = _read_until_visible(
        b, subject, a.furnisher, record.account_ref, deadline=included + timeout
    )
    visible = time.monotonic()
    after = credit_file.block_number - inclusion.block_number
    emit(
        f"    {bank_b.name} read subject {shown} from {bank_b.node} ({bank_b.access.rpc_url}) "
        f"at block {credit_file.block_number}: {after} blocks after inclusion, "
        f"{_ms(visible - included)} after {bank_a.name} saw the receipt; the read took "
        f"{_ms(read_seconds)}"
    )

    emit(f"[5] the record {bank_b.name} read equals what {bank_a.name} sent")
    equal = found.record == record and found.furnisher == a.furnisher
    fields = len(dataclasses.fields(Record))
    if equal:
        emit(
            f"    equal: all {fields} fields match, furnisher {bank_a.name} ({a.furnisher}), "
            f"version {found.version}"
        )
    else:
        differ = [
            f.name
            for f in dataclasses.fields(Record)
            if getattr(found.record, f.name) != getattr(record, f.name)
        ]
        emit(f"    NOT EQUAL: fields differ: {', '.join(differ) or 'furnisher'}")
    emit(f"    summary of the subject: {summary_line(credit_file.summary)}")
    emit(f"done in {_ms(time.monotonic() - t_start)}")
    return DemoResult(
        subject=shown,
        account_ref=record.account_ref,
        tx_hash=pending.tx_hash,
        head_at_send=head_at_send,
        block_number=inclusion.block_number,
        sealed_by=sealed_by,
        send_seconds=sent - t_send,
        send_to_inclusion=included - t_send,
        read_block=credit_file.block_number,
        blocks_after_inclusion=after,
        visible_after_inclusion=visible - included,
        read_seconds=read_seconds,
        equal=equal,
        summary=credit_file.summary,
    )


def _read_until_visible(
    reader: CreditClient, subject: bytes, furnisher: str, account_ref: str, *, deadline: float
) -> tuple[Tradeline, CreditFile, float]:
    """Poll the reader's node until the tradeline is there: it, the file, the read's time."""
    started = time.monotonic()
    last = "not read yet"
    while True:
        t0 = time.perf_counter()
        credit_file = reader.get(subject)
        took = time.perf_counter() - t0
        for t in credit_file.tradelines:
            if t.furnisher == furnisher and t.record.account_ref == account_ref:
                return t, credit_file, took
        last = f"block {credit_file.block_number}, {len(credit_file.tradelines)} tradelines"
        if time.monotonic() > deadline:
            raise WaitTimeout(
                "the reading bank's node did not show the record in time",
                elapsed=time.monotonic() - started,
                last_state=last,
                obj=reader.rpc_url,
                hint="check that the node is peered and in sync (`poactl status`)",
            )
        time.sleep(POLL_SECONDS)
