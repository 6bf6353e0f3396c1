"""The tradeline model: what a bank reports (`Record`), what anyone reads back
(`Tradeline`, `HistoryEntry`, `CreditFile` with its `Summary`), client-side validation,
and the conversion to and from the contract's tuples.

Validation runs before anything is signed, so bad input never costs gas: each problem is
an `InvalidRecord` naming the field, the value and what is allowed. The contract checks
the same code sets again (it cannot trust every client), but only the client knows the
calendar, the Metro 2 cross-field rules and the full code tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from orchestrator.credit import codes
from orchestrator.credit.errors import InvalidRecord

AMOUNT_MAX = 2**48 - 1  # uint48 on chain; whole currency units
YEAR_MIN, YEAR_MAX = 1900, 2999
ACCOUNT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")
ACCOUNT_REF_ALLOWED = (
    "1 to 32 characters: letters, digits and . _ : / - (an opaque reference of the bank's, "
    "never the account number)"
)


@dataclass(frozen=True)
class Record:
    """One account as a bank reports it (Metro 2 base-segment fields).

    Codes are strings ("11", "I", "XB"); an empty string is a blank code. Amounts are
    whole currency units. `payment_history` is 24 characters, most recent month first.
    """

    account_ref: str
    portfolio_type: str
    account_type: str
    date_opened: dt.date
    date_of_account_information: dt.date
    current_balance: int
    account_status: str
    payment_history: str
    credit_limit: int = 0
    highest_credit: int = 0
    amount_past_due: int = 0
    payment_rating: str = ""
    compliance_condition: str = ""
    special_comment: str = ""


RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_REQUIRED = tuple(f.name for f in dataclasses.fields(Record) if f.default is dataclasses.MISSING)
_AMOUNTS = ("credit_limit", "highest_credit", "current_balance", "amount_past_due")
_DATES = ("date_opened", "date_of_account_information")


@dataclass(frozen=True)
class Tradeline:
    """A tradeline as stored on chain: the record, who furnished it, its version."""

    subject: bytes
    furnisher: str  # checksummed address of the reporting bank
    record: Record
    version: int  # 1 after the first report, +1 per change (report, dispute, resolve)
    updated_at: dt.datetime  # block time of the last change, UTC

    @property
    def disputed(self) -> bool:
        return self.record.compliance_condition in codes.DISPUTE_OPEN


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a tradeline, rebuilt from a `Reported` or `DisputeChanged` log."""

    change: str  # "reported" | "disputed" | "resolved"
    by: str  # the bank that made the change
    tradeline: Tradeline
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class Summary:
    accounts: int  # tradelines, not counting those reported deleted (DA/DF)
    open_accounts: int  # of those, with a balance or a status that is not paid/closed
    total_balance: int
    total_past_due: int
    worst_status: str | None  # the most severe current account status, None without accounts
    delinquencies: int  # accounts whose current status is delinquent (71..84, 88, 89, 93..97)
    late_months: int  # late months (1-6, G, H, J, K, L) over all 24-month payment histories
    disputed: int  # accounts with an open dispute (XB, XD, XF, XJ)
    furnishers: int  # distinct banks reporting on the subject


@dataclass(frozen=True)
class ReadFrom:
    """Where a read's answer came from and how current it was: `source` "index" (the
    bank's read index) or "node"; the answer is as of `block_number`, and the node's head
    was `head` (for an index, as it last saw it)."""

    source: str
    block_number: int
    head: int

    @property
    def behind(self) -> int:
        """Blocks the answer is behind the node's head (0 for a read from the node)."""
        return max(0, self.head - self.block_number)


@dataclass(frozen=True)
class CreditFile:
    """Everything the chain holds on one subject, read at one block."""

    subject: bytes
    block_number: int
    tradelines: tuple[Tradeline, ...]
    summary: Summary
    read: ReadFrom | None = None  # where it was read and how far behind the node's head


# -- validation -----------------------------------------------------------------------


def _check_code(field: str, value: object, table: Mapping[str, str], blank_ok: bool) -> None:
    if isinstance(value, str) and (value in table or (blank_ok and value == "")):
        return
    listed = ", ".join(table) if len(table) <= 25 else f"one of the {len(table)} Metro 2 codes"
    allowed = f"{listed}{' or blank' if blank_ok else ''}"
    if len(table) > 25:
        allowed += " in orchestrator.credit.codes (see docs/credit.md)"
    if not isinstance(value, str):
        allowed += ", as text (quote codes in YAML: '05')"
    raise InvalidRecord(field, value, allowed)


def validate_record(record: Record, *, today: dt.date | None = None) -> Record:
    """`record` unchanged if every field is allowed; else InvalidRecord for the first bad one.

    `today` (default: the local date) bounds the dates; one day of slack covers time zones.
    """
    if not isinstance(record, Record):
        raise InvalidRecord("record", type(record).__name__, "a Record")
    r = record
    if not isinstance(r.account_ref, str) or not ACCOUNT_REF.match(r.account_ref):
        raise InvalidRecord("account_ref", r.account_ref, ACCOUNT_REF_ALLOWED)
    _check_code("portfolio_type", r.portfolio_type, codes.PORTFOLIO_TYPES, blank_ok=False)
    _check_code("account_type", r.account_type, codes.ACCOUNT_TYPES, blank_ok=False)
    status_names = {k: v.description for k, v in codes.STATUS.items()}
    _check_code("account_status", r.account_status, status_names, blank_ok=False)
    _check_code("payment_rating", r.payment_rating, codes.PAYMENT_RATINGS, blank_ok=True)
    _check_code(
        "compliance_condition", r.compliance_condition, codes.COMPLIANCE_CONDITIONS, blank_ok=True
    )
    _check_code("special_comment", r.special_comment, codes.SPECIAL_COMMENTS, blank_ok=True)
    _check_history(r.payment_history)

    for name in _AMOUNTS:
        value = getattr(r, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= AMOUNT_MAX:
            raise InvalidRecord(name, value, f"a whole amount from 0 to {AMOUNT_MAX}")
    _check_dates(r, today or dt.date.today())
    _check_rules(r)
    return record


def _check_dates(r: Record, today: dt.date) -> None:
    latest = today + dt.timedelta(days=1)
    for name in _DATES:
        value = getattr(r, name)
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise InvalidRecord(name, value, "a calendar date (datetime.date, YYYY-MM-DD)")
        if not YEAR_MIN <= value.year <= YEAR_MAX or value > latest:
            raise InvalidRecord(name, value.isoformat(), f"a date from {YEAR_MIN} to today")
    if r.date_opened > r.date_of_account_information:
        raise InvalidRecord(
            "date_opened",
            r.date_opened.isoformat(),
            f"on or before date_of_account_information ({r.date_of_account_information})",
        )


def _check_rules(r: Record) -> None:
    """Cross-field rules (Metro 2 edits)."""
    if r.amount_past_due > r.current_balance:
        raise InvalidRecord(
            "amount_past_due", r.amount_past_due, f"at most current_balance ({r.current_balance})"
        )
    status = r.account_status
    needs_rating = status in codes.STATUS_NEEDS_RATING
    if needs_rating and r.payment_rating == "":
        rule = ", ".join(sorted(codes.STATUS_NEEDS_RATING))
        raise InvalidRecord(
            "payment_rating", "", f"a rating (0-6, G, L) with account status {status} ({rule})"
        )
    if not needs_rating and r.payment_rating != "":
        raise InvalidRecord(
            "payment_rating", r.payment_rating, f"blank with account status {status}"
        )
    if status in codes.STATUS_ZERO_BALANCE and r.current_balance != 0:
        raise InvalidRecord(
            "current_balance", r.current_balance, f"0 with paid/closed account status {status}"
        )
    if status in codes.STATUS_PAST_DUE and r.amount_past_due == 0:
        raise InvalidRecord(
            "amount_past_due", 0, f"more than 0 with past-due account status {status}"
        )
    if r.compliance_condition in codes.DISPUTE_RESOLVE - {"XR"}:
        raise InvalidRecord(
            "compliance_condition",
            r.compliance_condition,
            "blank, XA, XR or an open-dispute code (XB, XD, XF, XJ); "
            "resolve a dispute with resolve()",
        )


def _check_history(history: object) -> None:
    allowed = (
        f"{codes.HISTORY_MONTHS} characters, most recent month first, each one of "
        f"{''.join(codes.PAYMENT_HISTORY)}"
    )
    if not isinstance(history, str) or len(history) != codes.HISTORY_MONTHS:
        raise InvalidRecord("payment_history", history, allowed)
    for i, c in enumerate(history):
        if c not in codes.PAYMENT_HISTORY:
            raise InvalidRecord(f"payment_history[{i}]", c, allowed)


# -- parsing (YAML/JSON files, CLI) ---------------------------------------------------


def record_from_mapping(data: Mapping[str, Any]) -> Record:
    """A Record from plain data (strings, numbers, dates), as read from YAML or JSON.

    Codes may be given as strings or numbers ("00" is safest: quote codes in YAML).
    The result is not validated yet: call `validate_record`.
    """
    if not isinstance(data, Mapping):
        raise InvalidRecord("record", type(data).__name__, "a mapping of record fields")
    unknown = sorted(set(data) - set(RECORD_FIELDS))
    if unknown:
        raise InvalidRecord(unknown[0], data[unknown[0]], f"one of {', '.join(RECORD_FIELDS)}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise InvalidRecord(missing[0], None, "a value (the field is required)")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if name in _AMOUNTS:
            values[name] = _parse_int(name, raw)
        elif name in _DATES:
            values[name] = _parse_date(name, raw)
        else:
            values[name] = "" if raw is None else str(raw)
    return Record(**values)


def record_to_mapping(record: Record) -> dict[str, Any]:
    """JSON-ready fields of a record (dates as YYYY-MM-DD)."""
    out = dataclasses.asdict(record)
    for name in _DATES:
        out[name] = getattr(record, name).isoformat()
    return out


def _parse_int(name: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?[0-9]+", raw.strip().replace("_", "")):
        return int(raw.strip().replace("_", ""))
    raise InvalidRecord(name, raw, "a whole number")


def _parse_date(name: str, raw: object) -> dt.date:
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise InvalidRecord(name, raw, "a calendar date as YYYY-MM-DD")


# -- contract encoding ----------------------------------------------------------------


def _code(value: str, size: int) -> bytes:
    return value.encode("ascii").ljust(size, b"\0")


def _text(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode("ascii", errors="replace")


def date_to_int(value: dt.date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def int_to_date(value: int) -> dt.date:
    return dt.date(value // 10000, value // 100 % 100, value % 100)


def account_ref_bytes(account_ref: str) -> bytes:
    if not isinstance(account_ref, str) or not ACCOUNT_REF.match(account_ref):
        raise InvalidRecord("account_ref", account_ref, ACCOUNT_REF_ALLOWED)
    return _code(account_ref, 32)


# The record's packed layout on chain (the contract's RECORD_BYTES): (field, offset, size).
RECORD_LAYOUT = (
    ("portfolio_type", 0, 1),
    ("account_type", 1, 2),
    ("date_opened", 3, 4),
    ("credit_limit", 7, 6),
    ("highest_credit", 13, 6),
    ("current_balance", 19, 6),
    ("amount_past_due", 25, 6),
    ("account_status", 31, 2),
    ("payment_rating", 33, 1),
    ("payment_history", 34, 24),
    ("special_comment", 58, 2),
    ("date_of_account_information", 60, 4),
    ("compliance_condition", 64, 2),  # as sent; the state word has the one in force
)
RECORD_BYTES = 66
ENTRY_BYTES = 32 + 32 + RECORD_BYTES  # subject, account reference, record: one `furnish` entry


def record_to_contract(r: Record) -> bytes:
    """The record as the contract takes it: 66 bytes, big-endian (see RECORD_LAYOUT)."""
    out = bytearray()
    for name, _offset, size in RECORD_LAYOUT:
        value = getattr(r, name)
        if name in _DATES:
            out += date_to_int(value).to_bytes(size, "big")
        elif name in _AMOUNTS:
            out += int(value).to_bytes(size, "big")
        else:
            out += _code(value, size)
    return bytes(out)


def record_from_contract(account_ref: str, data: bytes) -> Record:
    """The Record that `record_to_contract` packed into `data`."""
    if len(data) != RECORD_BYTES:
        raise ValueError(f"a packed record is {RECORD_BYTES} bytes, not {len(data)}")
    values: dict[str, Any] = {"account_ref": account_ref}
    for name, offset, size in RECORD_LAYOUT:
        raw = data[offset : offset + size]
        if name in _DATES:
            values[name] = int_to_date(int.from_bytes(raw, "big"))
        elif name in _AMOUNTS:
            values[name] = int.from_bytes(raw, "big")
        else:
            values[name] = _text(raw)
    return Record(**values)


def commitment(packed: bytes) -> int:
    """The contract's commitment to a packed record: the high 16 bytes of its keccak."""
    return int.from_bytes(keccak(packed)[:16], "big")


REPORTED_DATA_BYTES = 5 * 32  # accountRef, state, head, body, tail (bytes2, left-aligned)


def reported_fields(data: bytes) -> tuple[bytes, int, bytes]:
    """(account reference, state word, the 66-byte record as sent) of a `Reported` log's
    data. `commitment(record) == state >> 128` holds for every log the registry wrote."""
    if len(data) != REPORTED_DATA_BYTES:
        raise ValueError(f"a Reported log's data is {REPORTED_DATA_BYTES} bytes, not {len(data)}")
    return data[:32], int.from_bytes(data[32:64], "big"), data[64:130]


@dataclass(frozen=True)
class TradelineState:
    """A tradeline's state word in the contract (0 for none): see CreditRegistry.sol."""

    version: int
    date_of_account_information: int  # YYYYMMDD
    compliance_condition: str
    updated_at: int  # block time of the last change
    commitment: int

    @classmethod
    def of(cls, word: int) -> TradelineState:
        return cls(
            version=word & 0xFFFFFFFF,
            date_of_account_information=(word >> 32) & 0xFFFFFFFF,
            compliance_condition=_text((word >> 64 & 0xFFFF).to_bytes(2, "big")),
            updated_at=(word >> 80) & (2**48 - 1),
            commitment=word >> 128,
        )


def tradeline_key(subject: bytes, furnisher: str, account_ref: str) -> bytes:
    """The contract's key of a tradeline: keccak(abi.encode(subject, furnisher, ref))."""
    address = bytes.fromhex(to_checksum_address(furnisher)[2:])
    return keccak(subject + address.rjust(32, b"\0") + account_ref_bytes(account_ref))


@functools.lru_cache(maxsize=4096)
def checksummed(address: str) -> str:
    """`address` checksummed (cached: a read meets the same few banks again and again)."""
    return str(to_checksum_address(address))


def tradeline_at(
    subject: bytes, furnisher: str, state: TradelineState, record: Record
) -> Tradeline:
    """The tradeline after a change: the last reported `record`, with the compliance
    condition, version and time from `state` (a dispute changes only those)."""
    return Tradeline(
        subject=bytes(subject),
        furnisher=checksummed(furnisher),
        record=dataclasses.replace(record, compliance_condition=state.compliance_condition),
        version=state.version,
        updated_at=dt.datetime.fromtimestamp(state.updated_at, tz=dt.UTC),
    )


# -- summary --------------------------------------------------------------------------


def summarize(tradelines: Sequence[Tradeline]) -> Summary:
    """The subject's totals across every bank; deleted (DA/DF) tradelines do not count."""
    live = [t for t in tradelines if not _status(t).deleted]
    worst: str | None = None
    for t in live:
        code = t.record.account_status
        if worst is None or _severity(code) > _severity(worst):
            worst = code
    closed = {"13", "61", "62", "63", "64", "65", "05"}
    return Summary(
        accounts=len(live),
        open_accounts=sum(
            1 for t in live if t.record.account_status not in closed or t.record.current_balance
        ),
        total_balance=sum(t.record.current_balance for t in live),
        total_past_due=sum(t.record.amount_past_due for t in live),
        worst_status=worst,
        delinquencies=sum(1 for t in live if _status(t).delinquent),
        late_months=sum(
            sum(1 for c in t.record.payment_history if c in codes.PAYMENT_HISTORY_LATE)
            for t in live
        ),
        disputed=sum(1 for t in live if t.disputed),
        furnishers=len({t.furnisher for t in live}),
    )


def _status(t: Tradeline) -> codes.Status:
    # Unknown codes cannot come from the contract; treat them as worst to stay safe.
    return codes.STATUS.get(t.record.account_status, codes.Status("unknown", 10, True))


def _severity(code: str) -> int:
    return codes.STATUS.get(code, codes.Status("unknown", 10, True)).severity
