"""A bank's monthly furnishing file onto the chain: `poactl credit furnish`.

The file (Metro 2 or JSON Lines, read by `metro2`) is validated line by line; a refused
line is reported and the good ones still go. Each consumer's national ID becomes the
consortium pseudonym and each account number a keyed account reference, here, in the
bank's process: neither, nor names, birth dates or addresses, is ever sent. The account
reference is HMAC-SHA256 of the account number under the bank's own account-reference key
(`<bank>-account-ref-key` in its vault, made with its other keys): the same for every
writer of the bank and every month, and no other bank can tell which account it stands for.

Resumable and idempotent without a journal: before sending, the registry's state of every
tradeline in the file is read (`states`, one call per 1,000) and a record whose
commitment is already there is not sent again; a record older than the one on chain is
refused as stale. The contract itself skips a record identical to the committed one, so
batches of a killed run that land after the rerun sent them again write nothing twice.

Records go in batches (`furnish`, 100 records per transaction by default), several
transactions in flight at once, nonces allocated locally; the progress callback hears of
each batch when it is included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from orchestrator.boundaries import Secret
from orchestrator.credit.client import CreditClient
from orchestrator.credit.errors import ContractRevert, CreditError
from orchestrator.credit.furnishing_file import LineProblem, read_furnishing_file
from orchestrator.credit.records import (
    Record,
    TradelineState,
    commitment,
    date_to_int,
    int_to_date,
    record_to_contract,
    tradeline_key,
)
from orchestrator.errors import TransactionError
from orchestrator.geth.tx import PendingTx

BATCH_RECORDS = 100  # ~3M gas of new records: nine such batches fit a 30M-gas block
IN_FLIGHT = 32  # batches sent before the oldest must be included: ~3-4 blocks of 30M gas
STATE_CHUNK = 1000  # tradeline states per eth_call
# Gas limits per batch: a new record costs ~29.6k and at most ~30.5k (every calldata byte
# non-zero), a changed one ~13k; geth fits a transaction in a block by its limit.
GAS_NEW_RECORD = 34_000
GAS_CHANGED_RECORD = 20_000
GAS_PER_BATCH = 60_000  # the transaction, the membership check, the batch's ABI
ACCOUNT_REF_PREFIX = "M2-"


def account_ref_for(key: Secret, account_number: str) -> str:
    """The opaque, stable reference of one account: 32 characters, never the number."""
    message = account_number.strip().encode()
    digest = hmac.new(key.value.encode(), message, hashlib.sha256).hexdigest()
    return ACCOUNT_REF_PREFIX + digest[: 32 - len(ACCOUNT_REF_PREFIX)]


@dataclass
class FurnishResult:
    """What one run did, for the operator and for an auditor."""

    file_format: str
    read: int  # good records in the file
    problems: list[LineProblem]  # refused lines (the file's, and stale records)
    unchanged: int  # already on chain, identical: not sent
    written: int = 0  # records sent and included
    batches: int = 0
    gas_used: int = 0
    seconds: float = 0.0
    tx_hashes: list[str] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Item:
    line: int
    subject: bytes
    record: Record
    new: bool = True  # no tradeline on chain yet (a storage word to create)


def furnish_file(
    client: CreditClient,
    path: Path,
    *,
    account_ref_key: Secret,
    batch_records: int = BATCH_RECORDS,
    in_flight: int = IN_FLIGHT,
    timeout: float = 120.0,
    progress: Callable[[int], None] = lambda _n: None,
    on_plan: Callable[[FurnishResult, int], None] = lambda _r, _n: None,
    today: date | None = None,
) -> FurnishResult:
    """Furnish every good record of `path` that the chain does not hold yet.

    `on_plan(result, to_send)` is called once the file is read and the chain consulted;
    `progress(n)` after each included batch of `n` records. A batch the registry refuses
    raises ContractRevert naming the batch's lines; what was included before stays, and a
    rerun sends only what is missing.
    """
    # The reference is of the account number alone: the same in both formats (JSON Lines
    # has no identification number) and whichever identification number a file carries.
    read = read_furnishing_file(
        path, account_ref=lambda _idn, number: account_ref_for(account_ref_key, number), today=today
    )
    items = [_Item(r.line, client.subject(r.national_id), r.record) for r in read.records]
    result = FurnishResult(read.format, len(items), list(read.problems), unchanged=0)
    todo = _missing(client, items, result)
    on_plan(result, len(todo))
    started = time.monotonic()
    sent: deque[tuple[PendingTx, Sequence[_Item]]] = deque()
    for first in range(0, len(todo), batch_records):
        chunk = todo[first : first + batch_records]
        gas = GAS_PER_BATCH + sum(GAS_NEW_RECORD if i.new else GAS_CHANGED_RECORD for i in chunk)
        pending = client.furnish([(i.subject, i.record) for i in chunk], gas=gas)
        sent.append((pending, chunk))
        result.tx_hashes.append(pending.tx_hash)
        if len(sent) >= in_flight:
            _settle(sent.popleft(), result, timeout, progress)
    while sent:
        _settle(sent.popleft(), result, timeout, progress)
    result.seconds = time.monotonic() - started
    return result


def _missing(client: CreditClient, items: list[_Item], result: FurnishResult) -> list[_Item]:
    """The items whose record the chain does not hold; stale ones become problems."""
    furnisher = client.furnisher
    if int(furnisher, 16) == 0:
        raise CreditError(
            f"{client.address} does not write for a member bank",
            obj=client.address,
            hint="use the bank's own transaction key; governance lists each member's "
            "writer accounts (`poactl members`)",
        )
    todo: list[_Item] = []
    for first in range(0, len(items), STATE_CHUNK):
        chunk = items[first : first + STATE_CHUNK]
        keys = [tradeline_key(i.subject, furnisher, i.record.account_ref) for i in chunk]
        for item, state in zip(chunk, client.states(keys), strict=True):
            if state.version and state.commitment == commitment(record_to_contract(item.record)):
                result.unchanged += 1
            elif state.version and _stale(item.record, state):
                result.problems.append(_stale_problem(item, state))
            else:
                todo.append(dataclasses.replace(item, new=not state.version))
    result.problems.sort(key=lambda p: p.line)
    return todo


def _stale(record: Record, state: TradelineState) -> bool:
    return date_to_int(record.date_of_account_information) < state.date_of_account_information


def _stale_problem(item: _Item, state: TradelineState) -> LineProblem:
    on_chain = int_to_date(state.date_of_account_information).isoformat()
    return LineProblem(
        line=item.line,
        field="date_of_account_information",
        value=item.record.date_of_account_information.isoformat(),
        rule=f"on or after {on_chain}, the date of the report on chain (version "
        f"{state.version}): an older report is stale",
    )


def _settle(
    batch: tuple[PendingTx, Sequence[_Item]],
    result: FurnishResult,
    timeout: float,
    progress: Callable[[int], None],
) -> None:
    pending, chunk = batch
    try:
        inclusion = pending.wait(timeout=timeout)
    except (ContractRevert, TransactionError) as e:
        shown = ", ".join(str(i.line) for i in chunk[:5]) + (", ..." if len(chunk) > 5 else "")
        e.hint = (
            f"the batch of {len(chunk)} records (lines {shown}) was refused and nothing of "
            f"it written; {result.written} records of earlier batches are on chain and "
            "batches sent after it may still land. Run the same command again: it sends only "
            f"what is missing. {e.hint or ''}"
        ).strip()
        raise
    result.written += len(chunk)
    result.batches += 1
    result.gas_used += inclusion.gas_used
    progress(len(chunk))
