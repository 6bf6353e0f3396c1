"""A bank's monthly furnishing file onto the chain: `poactl credit furnish`.

The file (Metro 2 or JSON Lines, read by `metro2`) is validated line by line; a refused
line is reported and the good ones still go. Each consumer's national ID becomes the
consortium pseudonym and each account number a keyed account reference, here, in the
bank's process: neither, nor names, birth dates or addresses, is ever sent. The account
reference is HMAC-SHA256 of the account number under the bank's own account-reference key
(`<bank>-account-ref-key` in its vault, made with its other keys): the same for every
writer of the bank and every month, and no other bank can tell which account it stands for.

Resumable and idempotent without a journal: before sending, the registry's state of every
tradeline in the file is read (`states`, one call per STATE_CHUNK) and a record whose
commitment is already there is not sent again; a record older than the one on chain is
refused as stale. The contract itself skips a record identical to the committed one, so
batches of a killed run that land after the rerun sent them again write nothing twice.

Records go in batches (`furnish`, BATCH_RECORDS per transaction by default), signed here
and sent through `geth.pipeline`: runs of consecutive nonces in one batch request (so
behind the bank's round-robin balancer one node gets them in order), up to
BLOCKS_IN_FLIGHT blocks' worth of gas in flight, receipts read raw when the head moves. The
progress callback hears of each batch when it is in a block; `FurnishResult.phases` says
where the time went.

Paced by the base fee: blocks fuller than half the gas limit (EIP-1559's target) raise the
base fee 12.5 % a block, so a file sent as fast as blocks fill would, after about 50 full
blocks, cost more per batch than geth's 1-ether fee cap lets a node accept (measured: the
furnishing benchmark at 50M gas failed so). While the base fee is above FEE_PAUSE_WEI no
new batch goes, even with none in flight (sending then kept the blocks full and the fee
climbing: the benchmark's 30M baseline failed so): the blocks drain, the fee falls, and a
long file runs at the target, half the gas limit, for as long as it takes.
"""

from __future__ import annotations

import dataclasses
import functools
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
from orchestrator.credit.errors import CreditError
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
from orchestrator.geth.pipeline import TxPipeline
from orchestrator.retry import retry_transient

BATCH_RECORDS = 100  # ~3M gas of new records per transaction
BLOCKS_IN_FLIGHT = 3  # gas of up to three full blocks sent and not yet in a block
FEE_PAUSE_WEI = 10 * 10**9  # base fee (10 gwei, from 1 at genesis) above which sending waits
FEE_PAUSE_POLL = 1.0  # seconds between looks at the base fee while it falls
STATE_CHUNK = 250  # tradeline states per eth_call: well under the balancer's 3 s node timeout on
# a loaded node (at 1,000 a call, the rerun of a 150k-record file ran into it)
LOOKAHEAD_RECORDS = 10_000  # checked against the chain ahead of sending
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
    seconds: float = 0.0  # from the first transaction sent to the last one in a block
    tx_hashes: list[str] = field(default_factory=list)
    # Where the time went, in seconds: reading (the file, validation, pseudonyms),
    # chain_state (`states` of every tradeline), building (batches' calldata), signing,
    # sending (the requests) and waiting (for blocks, and reading receipts).
    phases: dict[str, float] = field(default_factory=dict)

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
    blocks_in_flight: float = BLOCKS_IN_FLIGHT,
    timeout: float = 120.0,
    progress: Callable[[int], None] = lambda _n: None,
    on_plan: Callable[[FurnishResult], None] = lambda _r: None,
    today: date | None = None,
) -> FurnishResult:
    """Furnish every good record of `path` that the chain does not hold yet.

    `on_plan(result)` is called once the file is read (`result.read` good records to
    check against the chain, `result.problems` the refused lines); `progress(n)` each time
    `n` more of them are done: found on chain already, or written in an included batch.
    The chain's state is read a chunk at a time while earlier batches are in flight.
    `today` is the date every record is validated against (default: the local date). A
    batch the registry refuses raises ContractRevert naming the batch's lines; what was
    included before stays, and a rerun sends only what is missing.
    """
    clock = time.monotonic()
    # The reference is of the account number alone: the same in both formats (JSON Lines
    # has no identification number) and whichever identification number a file carries.
    read = read_furnishing_file(
        path, account_ref=lambda _idn, number: account_ref_for(account_ref_key, number), today=today
    )
    items = [_Item(r.line, client.subject(r.national_id), r.record) for r in read.records]
    result = FurnishResult(read.format, len(items), list(read.problems), unchanged=0)
    result.phases["reading"] = time.monotonic() - clock
    checker = _Checker(client, items, result)
    on_plan(result)
    started = time.monotonic()
    pipe: TxPipeline[Sequence[_Item]] = TxPipeline(client.sender, timeout=timeout)
    budget = int(blocks_in_flight * pipe.block_gas_limit()) if items else 0
    queue: deque[_Item] = deque()  # checked, to send
    building = 0.0

    def refused(chunk: Sequence[_Item], e: TransactionError) -> TransactionError:
        shown = ", ".join(str(i.line) for i in chunk[:5]) + (", ..." if len(chunk) > 5 else "")
        e.hint = (
            f"the batch of {len(chunk)} records (lines {shown}) was refused and nothing of "
            f"it written; {result.written} records of earlier batches are on chain and "
            "batches sent after it may still land. Run the same command again: it sends only "
            f"what is missing. {e.hint or ''}"
        ).strip()
        return e

    def check() -> None:
        found = result.unchanged
        queue.extend(checker.next_chunk())
        if result.unchanged > found:
            progress(result.unchanged - found)

    while not checker.done or queue or pipe.outstanding:
        while not checker.done and len(queue) < batch_records:
            check()  # a batch's worth to send, at least
        clock = time.monotonic()
        batch: list[tuple[bytes, int, Sequence[_Item], str]] = []
        paused = _fee_pause(client, pipe)
        free = 0 if paused else budget - pipe.gas_in_flight
        while queue and not paused:
            chunk = [queue.popleft() for _ in range(min(batch_records, len(queue)))]
            gas = GAS_PER_BATCH + sum(
                GAS_NEW_RECORD if i.new else GAS_CHANGED_RECORD for i in chunk
            )
            if gas > free and (batch or pipe.outstanding):
                queue.extendleft(reversed(chunk))
                break
            data = client.furnish_data([(i.subject, i.record) for i in chunk], today=today)
            batch.append((data, gas, chunk, f"batch of {len(chunk)} records"))
            free -= gas
        building += time.monotonic() - clock
        if batch:
            result.tx_hashes += pipe.send(client.registry, batch)
        ahead = not checker.done and len(queue) < LOOKAHEAD_RECORDS
        if ahead:
            check()  # while the batches in flight wait for blocks
        for landed in pipe.landed(refused, wait=not ahead):
            result.written += len(landed.tag)
            result.batches += 1
            result.gas_used += landed.gas_used
            progress(len(landed.tag))
    result.seconds = time.monotonic() - started
    result.problems.sort(key=lambda p: p.line)
    result.phases |= {
        "chain_state": checker.seconds,
        "building": building,
        "signing": pipe.timings.signing,
        "sending": pipe.timings.sending,
        "waiting": pipe.timings.following,
    }
    return result


def _fee_pause(client: CreditClient, pipe: TxPipeline[Sequence[_Item]]) -> bool:
    """Whether sending waits: the base fee says blocks run over the target (the module's
    docstring). With nothing in flight to wait on, it waits a moment here for it to fall."""
    if client.sender.base_fee() <= FEE_PAUSE_WEI:
        return False
    if not pipe.outstanding:
        time.sleep(FEE_PAUSE_POLL)
    return True


class _Checker:
    """The chain's state of the file's tradelines, STATE_CHUNK keys per `states` call, read
    as sending needs it: a record the chain holds already is counted (`unchanged`), one
    older than the chain's is a problem (stale), the rest is to send."""

    def __init__(self, client: CreditClient, items: list[_Item], result: FurnishResult) -> None:
        self.client, self.items, self.result = client, items, result
        self.furnisher = client.furnisher
        if int(self.furnisher, 16) == 0:
            raise CreditError(
                f"{client.address} does not write for a member bank",
                obj=client.address,
                hint="use the bank's own transaction key; governance lists each member's "
                "writer accounts (`poactl members`)",
            )
        self.first = 0
        self.seconds = 0.0

    @property
    def done(self) -> bool:
        return self.first >= len(self.items)

    def next_chunk(self) -> list[_Item]:
        """The next chunk's items the chain does not hold (stale ones become problems)."""
        started = time.monotonic()
        chunk = self.items[self.first : self.first + STATE_CHUNK]
        self.first += len(chunk)
        keys = [tradeline_key(i.subject, self.furnisher, i.record.account_ref) for i in chunk]
        states = retry_transient(
            functools.partial(self.client.states, keys),
            what="reading tradeline states",
            timeout=60.0,
        )
        todo = []
        for item, state in zip(chunk, states, strict=True):
            if state.version and state.commitment == commitment(record_to_contract(item.record)):
                self.result.unchanged += 1
            elif state.version and _stale(item.record, state):
                self.result.problems.append(_stale_problem(item, state))
            else:
                todo.append(dataclasses.replace(item, new=not state.version))
        self.seconds += time.monotonic() - started
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
