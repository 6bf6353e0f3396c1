"""The Metro 2 (CDIA) 426-character "character format": where each field is, one base
segment read into the fields furnishing uses, and Metro 2 files written (tests,
benchmarks, demos).

A file is a Header Record, one Base Segment per account, a Trailer Record; one record per
line (LF or CRLF). A base segment may be followed on its line by appended segments (J1,
J2, K1..K4, L1, N1); only the base segment is read. Dates are MMDDYYYY, amounts
right-justified zero-filled whole dollars, alphanumeric fields left-justified
blank-filled. This module knows the format, not the rules a record must follow, the
chain or hashing: `furnishing_file` turns what is read here into validated records.

Field positions (1-based, inclusive) are those of moov-io/metro2, the open-source Go
implementation of Metro 2: https://github.com/moov-io/metro2, `pkg/lib/specifications.go`
(`baseSegmentCharacterFormat`, `headerRecordCharacterFormat`,
`trailerRecordCharacterFormat`, 0-based offsets there), cross-checked against the Ruby
gem teamupstart/metro_2 (`lib/metro_2/records/base_segment.rb`, same widths in order).

Base segment (426 characters):

    1-4     Record Descriptor Word (0426; more with appended segments)
    5       Processing Indicator (1)
    6-19    Time Stamp (MMDDYYYYHHMMSS)
    20      Correction Indicator (reserved)
    21-40   Identification Number (the furnisher's; read, not part of the account reference:
            `credit.furnish` keys that by the account number alone)
    41-42   Cycle Identifier
    43-72   Consumer Account Number
    73      Portfolio Type                       -> portfolio_type
    74-75   Account Type                         -> account_type
    76-83   Date Opened                          -> date_opened
    84-92   Credit Limit                         -> credit_limit
    93-101  Highest Credit / Original Loan Amt   -> highest_credit
    102-104 Terms Duration
    105     Terms Frequency
    106-114 Scheduled Monthly Payment Amount
    115-123 Actual Payment Amount
    124-125 Account Status                       -> account_status
    126     Payment Rating                       -> payment_rating
    127-150 Payment History Profile              -> payment_history
    151-152 Special Comment                      -> special_comment
    153-154 Compliance Condition Code            -> compliance_condition
    155-163 Current Balance                      -> current_balance
    164-172 Amount Past Due                      -> amount_past_due
    173-181 Original Charge-off Amount
    182-189 Date of Account Information          -> date_of_account_information
    190-197 FCRA Compliance/Date of First Delinquency
    198-205 Date Closed
    206-213 Date of Last Payment
    214     Interest Type Indicator
    215-231 Reserved (231: Consumer Transaction Type in older guides)
    232-256 Surname             257-276 First Name       277-296 Middle Name
    297     Generation Code
    298-306 Social Security Number               -> national_id
    307-314 Date of Birth       315-324 Telephone Number
    325     ECOA Code           326-327 Consumer Information Indicator
    328-329 Country Code        330-361 First Line of Address
    362-393 Second Line of Address               394-413 City
    414-415 State               416-424 Postal/Zip Code
    425     Address Indicator   426     Residence Code

Header: 1-4 RDW, 5-10 "HEADER", 48-55 Activity Date, 56-63 Date Created, 80-119 Reporter
Name. Trailer: 1-4 RDW, 5-11 "TRAILER", 12-20 Total Base Records (checked when present).
Names, birth dates, telephone numbers and addresses are never read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.credit.errors import InvalidRecord
from orchestrator.credit.pseudonym import masked, normalize_national_id
from orchestrator.credit.records import Record
from orchestrator.errors import ConfigError

RECORD_LENGTH = 426
RDW = f"{RECORD_LENGTH:04d}"
HEADER_ID = "HEADER"  # positions 5-10
TRAILER_ID = "TRAILER"  # positions 5-11

# Base-segment fields this module reads or writes: name -> (first, last position, 1-based
# inclusive; the Metro 2 name). Names are the Record's where the field is one of its.
BASE_FIELDS: dict[str, tuple[int, int, str]] = {
    "record_descriptor_word": (1, 4, "Record Descriptor Word"),
    "identification_number": (21, 40, "Identification Number"),
    "consumer_account_number": (43, 72, "Consumer Account Number"),
    "portfolio_type": (73, 73, "Portfolio Type"),
    "account_type": (74, 75, "Account Type"),
    "date_opened": (76, 83, "Date Opened"),
    "credit_limit": (84, 92, "Credit Limit"),
    "highest_credit": (93, 101, "Highest Credit"),
    "account_status": (124, 125, "Account Status"),
    "payment_rating": (126, 126, "Payment Rating"),
    "payment_history": (127, 150, "Payment History Profile"),
    "special_comment": (151, 152, "Special Comment"),
    "compliance_condition": (153, 154, "Compliance Condition Code"),
    "current_balance": (155, 163, "Current Balance"),
    "amount_past_due": (164, 172, "Amount Past Due"),
    "date_of_account_information": (182, 189, "Date of Account Information"),
    "national_id": (298, 306, "Social Security Number"),
}
_CODES = (
    "portfolio_type",
    "account_type",
    "account_status",
    "payment_rating",
    "special_comment",
    "compliance_condition",
)
_AMOUNTS = ("credit_limit", "highest_credit", "current_balance", "amount_past_due")
_DATES = ("date_opened", "date_of_account_information")
_SLICES = {name: slice(first - 1, last) for name, (first, last, _) in BASE_FIELDS.items()}
_TRAILER_COUNT = slice(11, 20)  # Total Base Records, positions 12-20

SECRET_FIELDS = frozenset(
    {"national_id", "account_number", "consumer_account_number", "account_ref"}
)

FILE_HINT = (
    "furnish a Metro 2 426-character file (header, one base segment per account, "
    "trailer) or JSON Lines (one object per line); see docs/credit.md"
)


def shown(name: str, value: object) -> str:
    """`value` safe to print: national IDs and account numbers masked."""
    if isinstance(value, str):
        return masked(value) if name in SECRET_FIELDS else value
    if value is None:
        return "<missing>"
    return str(value)


# -- reading ----------------------------------------------------------------------------

FieldProblem = tuple[str, object, str]  # (field, the value as read, what is allowed)


@dataclass(frozen=True)
class BaseSegment:
    """What furnishing reads of one base segment: the identifiers (left out of the repr)
    and the Record's fields but `account_ref`, parsed (codes and history as text)."""

    identification_number: str = field(repr=False)  # the furnisher's
    account_number: str = field(repr=False)
    national_id: str = field(repr=False)  # the Social Security Number field, trimmed
    values: dict[str, Any]


def base_segments(lines: list[str], path: Path) -> list[tuple[int, str]]:
    """The (line number, text) of every base segment of a Metro 2 file's `lines`, once
    its structure is checked: a header first, a trailer last, none between, and the
    trailer's count (when present) equal to the segments'. ConfigError otherwise."""
    numbered = [(i, s.rstrip("\r")) for i, s in enumerate(lines, 1) if s.strip()]
    first_no, first = numbered[0]
    if first[4:10] != HEADER_ID:
        raise ConfigError(
            f"no Metro 2 header record: line {first_no} does not have {HEADER_ID} at "
            "positions 5-10",
            obj=str(path),
            hint=FILE_HINT,
        )
    last_no, last = numbered[-1]
    if len(numbered) < 2 or last[4:11] != TRAILER_ID:
        raise ConfigError(
            f"no Metro 2 trailer record: the last record (line {last_no}) does not have "
            f"{TRAILER_ID} at positions 5-11",
            obj=str(path),
            hint="the file may be truncated: export it again with its trailer",
        )
    segments = numbered[1:-1]
    for no, line in segments:
        if line[4:10] == HEADER_ID or line[4:11] == TRAILER_ID:
            kind = "header" if line[4:10] == HEADER_ID else "trailer"
            raise ConfigError(
                f"a second {kind} record at line {no}: one file holds one header, "
                "base segments and one trailer",
                obj=str(path),
                hint="furnish each file separately",
            )
    count = last[_TRAILER_COUNT].strip()
    if count:
        if not (count.isascii() and count.isdigit()):
            raise ConfigError(
                f"the trailer's Total Base Records (line {last_no}, positions 12-20) "
                "is not a number",
                obj=str(path),
                hint="export the file again",
            )
        if int(count) != len(segments):
            raise ConfigError(
                f"the trailer counts {int(count)} base segments (positions 12-20) but "
                f"the file has {len(segments)}",
                obj=str(path),
                hint="the file may be truncated or edited: export it again",
            )
    return segments


def parse_base_segment(line: str) -> tuple[BaseSegment | None, list[FieldProblem]]:
    """One base segment's fields, or None and what is wrong with them (each problem's
    value as read: the caller masks identifiers before showing it)."""
    if len(line) < RECORD_LENGTH:
        return None, [
            (
                "record",
                f"{len(line)} characters",
                f"a base segment of {RECORD_LENGTH} characters (Metro 2 character format), "
                "optionally followed by appended segments",
            )
        ]
    problems: list[FieldProblem] = []
    rdw = line[:4]
    if not (rdw.isascii() and rdw.isdigit() and int(rdw) >= RECORD_LENGTH):
        problems.append(("record_descriptor_word", rdw, _RDW_RULE))
    identification = line[_ID_NUMBER].strip()
    account_number = line[_ACCOUNT_NUMBER].strip()
    if not account_number:
        problems.append(("consumer_account_number", "", _ACCOUNT_RULE))
    ssn = line[_SSN].strip()
    if not ssn or not ssn.strip("0") or not ssn.strip("9"):
        problems.append(("national_id", ssn, _SSN_RULE))
    values: dict[str, Any] = {name: line[where].strip() for name, where in _CODE_SLICES}
    values["payment_history"] = line[_HISTORY]
    for name, where in _AMOUNT_SLICES:
        raw = line[where]
        digits = raw.strip()
        if not digits:
            values[name] = 0
        elif digits.isascii() and digits.isdigit():
            values[name] = int(digits)
        else:
            problems.append((name, raw, _rule(name, "a whole amount, zero-filled digits")))
    for name, where in _DATE_SLICES:
        raw = line[where]
        parsed = _mmddyyyy(raw)
        if parsed is None:
            problems.append((name, raw, _rule(name, "a calendar date as MMDDYYYY")))
        else:
            values[name] = parsed
    if problems:
        return None, problems
    return BaseSegment(identification, account_number, ssn, values), []


def _where(name: str) -> str:
    first, last, title = BASE_FIELDS[name]
    where = f"position {first}" if first == last else f"positions {first}-{last}"
    return f"(Metro 2 {title}, {where})"


def _rule(name: str, allowed: str) -> str:
    return f"{allowed} {_where(name)}"


@lru_cache(maxsize=8192)  # files repeat their dates (one date of account information)
def _mmddyyyy(raw: str) -> date | None:
    if len(raw) != 8 or not (raw.isascii() and raw.isdigit()):
        return None
    try:
        return date(int(raw[4:]), int(raw[:2]), int(raw[2:4]))
    except ValueError:
        return None


_ID_NUMBER = _SLICES["identification_number"]
_ACCOUNT_NUMBER = _SLICES["consumer_account_number"]
_SSN = _SLICES["national_id"]
_HISTORY = _SLICES["payment_history"]
_CODE_SLICES = tuple((name, _SLICES[name]) for name in _CODES)
_AMOUNT_SLICES = tuple((name, _SLICES[name]) for name in _AMOUNTS)
_DATE_SLICES = tuple((name, _SLICES[name]) for name in _DATES)
_RDW_RULE = _rule("record_descriptor_word", f"4 digits, at least {RDW}")
_ACCOUNT_RULE = _rule("consumer_account_number", "the account number (required)")
_SSN_RULE = _rule("national_id", "the consumer's SSN / national ID (not blank, zero- or 9-filled)")
SSN_WHERE = " " + _where("national_id")


# -- writing (tests, benchmarks, demos) -------------------------------------------------


def _alpha(name: str, value: str, width: int) -> str:
    if len(value) > width:
        raise InvalidRecord(name, shown(name, value), f"at most {width} characters")
    return value.ljust(width)


def _num(value: int, width: int) -> str:
    return f"{value:0{width}d}"


def _date(value: date) -> str:
    return f"{value.month:02d}{value.day:02d}{value.year:04d}"


_TERMS = {"C": "LOC", "R": "REV", "O": "001", "I": "060", "M": "030"}


def format_base_segment(
    record: Record,
    *,
    national_id: str,
    account_number: str,
    identification_number: str = "BANK",
    surname: str = "DOE",
    first_name: str = "JANE",
    date_of_birth: date = date(1980, 1, 1),
) -> str:
    """`record` as one 426-character Metro 2 base segment (character format).

    The national ID goes, normalized, into the Social Security Number field (9
    characters, left-justified); fields the Record does not have get plausible constants.
    """
    r = record
    ssn = normalize_national_id(national_id)
    info = r.date_of_account_information
    parts = [
        RDW,
        "1",  # processing indicator
        _date(info) + "000000",  # time stamp MMDDYYYYHHMMSS
        "0",  # correction indicator
        _alpha("identification_number", identification_number, 20),
        "  ",  # cycle identifier
        _alpha("account_number", account_number, 30),
        _alpha("portfolio_type", r.portfolio_type, 1),
        _alpha("account_type", r.account_type, 2),
        _date(r.date_opened),
        _num(r.credit_limit, 9),
        _num(r.highest_credit, 9),
        _TERMS.get(r.portfolio_type, "001"),
        "M",  # terms frequency
        _num(0, 9),  # scheduled monthly payment
        _num(0, 9),  # actual payment
        _alpha("account_status", r.account_status, 2),
        _alpha("payment_rating", r.payment_rating, 1),
        _alpha("payment_history", r.payment_history, 24),
        _alpha("special_comment", r.special_comment, 2),
        _alpha("compliance_condition", r.compliance_condition, 2),
        _num(r.current_balance, 9),
        _num(r.amount_past_due, 9),
        _num(0, 9),  # original charge-off amount
        _date(info),
        "0" * 8,  # date of first delinquency
        "0" * 8,  # date closed
        "0" * 8,  # date of last payment
        " ",  # interest type indicator
        " " * 17,  # reserved
        _alpha("surname", surname, 25),
        _alpha("first_name", first_name, 20),
        " " * 20,  # middle name
        " ",  # generation code
        _alpha("national_id", ssn, 9),
        _date(date_of_birth),
        "0" * 10,  # telephone
        "1",  # ECOA code: individual
        "  ",  # consumer information indicator
        "US",
        _alpha("address", "1 MAIN ST", 32),
        " " * 32,
        _alpha("city", "SPRINGFIELD", 20),
        "IL",
        _alpha("postal_code", "62701", 9),
        " ",  # address indicator
        " ",  # residence code
    ]
    out = "".join(parts)
    assert len(out) == RECORD_LENGTH, len(out)
    return out


def format_header(identification_number: str, activity_date: date) -> str:
    """A 426-character Metro 2 header record for a file of `activity_date`."""
    parts = [
        RDW,
        HEADER_ID,
        "  ",  # cycle identifier
        " " * 10,  # Innovis program identifier
        " " * 10,  # Equifax
        " " * 5,  # Experian
        " " * 10,  # TransUnion
        _date(activity_date),
        _date(activity_date),  # date created
        "0" * 8,  # program date
        "0" * 8,  # program revision date
        _alpha("reporter_name", identification_number, 40),
        " " * 96,  # reporter address
        "0" * 10,  # reporter telephone
        _alpha("software_vendor", "poactl", 40),
        " " * 5,  # software version
        " " * 10,  # PRBC program identifier
        " " * 146,  # reserved
    ]
    out = "".join(parts)
    assert len(out) == RECORD_LENGTH, len(out)
    return out


def format_trailer(base_count: int) -> str:
    """A 426-character Metro 2 trailer record counting `base_count` base segments."""
    out = RDW + TRAILER_ID + _num(base_count, 9) + " " * 9 + "0" * 378 + " " * 19
    assert len(out) == RECORD_LENGTH, len(out)
    return out


def write_metro2(
    path: Path,
    items: Iterable[tuple[str, str, Record]],
    identification_number: str = "BANK",
) -> int:
    """Write (national_id, account_number, record) items as a Metro 2 file; their number.

    The header's activity date is the latest date of account information (today without
    items). The file is written whole, then renamed into place.
    """
    listed = list(items)
    segments = [
        format_base_segment(
            r, national_id=nid, account_number=acct, identification_number=identification_number
        )
        for nid, acct, r in listed
    ]
    activity = max((r.date_of_account_information for _, _, r in listed), default=date.today())
    lines = [format_header(identification_number, activity), *segments]
    lines.append(format_trailer(len(segments)))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
    os.replace(tmp, path)
    return len(segments)
