"""A bank's monthly furnishing file, read into validated records (`poactl credit furnish`).

This module owns reading the file a bank furnishes and nothing else: it reads a file into
`FileRecord`s (a validated `Record` plus the national ID and account number it came
with) and `LineProblem`s (one per refused line: line, field, what is allowed). It never
talks to the chain and never hashes anything itself: the caller's
`account_ref(identification_number, account_number)` turns the bank's account number into
the opaque reference stored on chain, and the caller hashes the national ID into the
subject (`pseudonym`). National IDs, account numbers and names stay inside the bank's
process: problems show them masked, and `FileRecord`'s repr leaves them out.

Two formats, told apart by the first non-blank character (`{`: JSON Lines, else Metro 2):

* Metro 2 (CDIA) 426-character "character format" (`metro2`: its layout, the base
  segments' fields, writing files);
* JSON Lines: one object per line with `national_id`, `account_number` and the `Record`
  fields except `account_ref` (dates YYYY-MM-DD); name, birth date and address keys are
  accepted and ignored. Blank lines are skipped in both formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.credit import metro2
from orchestrator.credit.errors import InvalidRecord
from orchestrator.credit.metro2 import shown
from orchestrator.credit.pseudonym import NATIONAL_ID, normalize_national_id
from orchestrator.credit.records import RECORD_FIELDS, Record, record_from_mapping, validate_record
from orchestrator.errors import ConfigError

# JSON Lines keys: the identifiers, the Record's fields but account_ref, and personal data
# a bank's export may carry, accepted and never used.
JSONL_IDS = ("national_id", "account_number")
JSONL_RECORD_KEYS = tuple(name for name in RECORD_FIELDS if name != "account_ref")
JSONL_IGNORED = frozenset(
    {
        "surname",
        "first_name",
        "middle_name",
        "date_of_birth",
        "address",
        "city",
        "state",
        "postal_code",
        "telephone",
    }
)
_JSONL_KEYS = frozenset(JSONL_IDS) | frozenset(JSONL_RECORD_KEYS) | JSONL_IGNORED


@dataclass(frozen=True)
class FileRecord:
    """One account read from the file, validated, with the identifiers it came with."""

    line: int  # 1-based line number in the file
    # The consumer's SSN / national ID as in the file (blanks trimmed): only ever hashed
    # into the pseudonym, inside the bank's process. Left out of the repr on purpose.
    national_id: str = field(repr=False)
    # The bank's account number as in the file: only ever hashed into an account_ref.
    account_number: str = field(repr=False)
    record: Record  # its account_ref is the caller's account_ref(...)


@dataclass(frozen=True)
class LineProblem:
    """Why one line was refused: its field, the value shown safely, what is allowed."""

    line: int
    field: str
    value: str  # safe to print: national IDs and account numbers are masked
    rule: str  # what is allowed

    def __str__(self) -> str:
        shown = self.value if self.value.startswith("<") else repr(self.value)
        return f"line {self.line}: {self.field} {shown}: {self.rule}"


@dataclass(frozen=True)
class ReadFile:
    """What a furnishing file held: its format, the good records and the refused lines."""

    format: str  # "metro2" | "jsonl"
    records: list[FileRecord]
    problems: list[LineProblem]


# -- reading ----------------------------------------------------------------------------


def read_furnishing_file(
    path: Path, *, account_ref: Callable[[str, str], str], today: date | None = None
) -> ReadFile:
    """Every account in `path` (Metro 2 or JSON Lines), validated; a bad line is a problem.

    `account_ref(identification_number, account_number)` gives each record's reference
    (the identification number is the base segment's, "" for JSON Lines). Good records
    are returned next to the problems of the bad ones. A file that cannot be trusted as a
    whole (unreadable, not UTF-8, no header or trailer, a trailer count that disagrees)
    is a ConfigError.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the furnishing file: {exc.strerror or exc}",
            obj=str(path),
            hint="check the path and that this user may read the file",
        ) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"not a text file: byte {exc.start} (line {line}) is not ASCII or UTF-8",
            obj=str(path),
            hint="export the file as ASCII or UTF-8 text (the Metro 2 packed format and "
            "EBCDIC are not read)",
        ) from exc
    lines = text.split("\n")
    reader = _Reader(account_ref, today or date.today())
    stripped = text.lstrip()
    if not stripped:
        raise ConfigError("the furnishing file is empty", obj=str(path), hint=metro2.FILE_HINT)
    if stripped[0] == "{":
        reader.read_jsonl(lines)
        fmt = "jsonl"
    else:
        reader.read_metro2(lines, path)
        fmt = "metro2"
    reader.problems.sort(key=lambda p: p.line)
    return ReadFile(format=fmt, records=reader.records, problems=reader.problems)


class _Reader:
    """The records and problems of one file, and the accounts seen so far."""

    def __init__(self, account_ref: Callable[[str, str], str], today: date) -> None:
        self.account_ref = account_ref
        self.today = today
        self.records: list[FileRecord] = []
        self.problems: list[LineProblem] = []
        self.seen: dict[tuple[str, str], int] = {}

    def problem(
        self, line: int, name: str, value: object, rule: str, *, safe: bool = False
    ) -> None:
        """Add a problem; `value` is masked unless it is `safe` (already a description)."""
        text = value if safe and isinstance(value, str) else shown(name, value)
        self.problems.append(LineProblem(line, name, text, rule))

    def invalid(self, line: int, exc: InvalidRecord, rule_suffix: str = "") -> None:
        if exc.field == "national_id" and isinstance(exc.value, str):
            value = exc.value  # already masked by normalize_national_id
        else:
            value = shown(exc.field, exc.value)
        self.problems.append(LineProblem(line, exc.field, value, exc.allowed + rule_suffix))

    def accept(
        self,
        line: int,
        national_id: str,
        identification_number: str,
        account_number: str,
        values: dict[str, Any],
        *,
        ssn_rule: str = "",
    ) -> None:
        """Normalize the ID, compute the reference, refuse duplicates, validate, keep."""
        subject_id = national_id.upper()
        if not (national_id.isascii() and NATIONAL_ID.match(subject_id)):
            try:  # the fast path above gives the same answer for plain ASCII IDs
                subject_id = normalize_national_id(national_id)
            except InvalidRecord as exc:
                self.invalid(line, exc, ssn_rule)
                return
        try:
            ref = self.account_ref(identification_number, account_number)
        except InvalidRecord as exc:
            self.problem(line, "account_number", account_number, exc.allowed)
            return
        key = (subject_id, ref)
        first = self.seen.setdefault(key, line)
        if first != line:
            self.problem(
                line,
                "account_number",
                account_number,
                f"each account once per file: this national ID and account appear twice; "
                f"line {first} has it",
            )
            return
        try:
            record = validate_record(Record(account_ref=ref, **values), today=self.today)
        except InvalidRecord as exc:
            self.invalid(line, exc)
            return
        self.records.append(FileRecord(line, national_id, account_number, record))

    # -- Metro 2 ------------------------------------------------------------------------

    def read_metro2(self, lines: list[str], path: Path) -> None:
        for no, line in metro2.base_segments(lines, path):
            segment, problems = metro2.parse_base_segment(line)
            for name, value, rule in problems:
                self.problem(no, name, value, rule)
            if segment is not None:
                self.accept(
                    no,
                    segment.national_id,
                    segment.identification_number,
                    segment.account_number,
                    segment.values,
                    ssn_rule=metro2.SSN_WHERE,
                )

    # -- JSON Lines ---------------------------------------------------------------------

    def read_jsonl(self, lines: list[str]) -> None:
        for no, raw in enumerate(lines, 1):
            if raw.strip():
                self.read_json_line(no, raw)

    def read_json_line(self, no: int, raw: str) -> None:
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.problem(
                no, "line", f"column {exc.colno}", f"a JSON object on one line ({exc.msg})"
            )
            return
        if not isinstance(obj, dict):
            self.problem(no, "line", type(obj).__name__, "a JSON object on one line")
            return
        unknown = sorted(set(obj) - _JSONL_KEYS)
        if unknown:
            allowed = ", ".join((*JSONL_IDS, *JSONL_RECORD_KEYS))
            self.problem(
                no,
                unknown[0],
                "<not shown>",
                f"one of {allowed} (or a name, birth date or address key, which is ignored)",
            )
            return
        ids: list[str] = []
        for name in JSONL_IDS:
            value = obj.get(name)
            if not isinstance(value, str) or not value.strip():
                if value is None:
                    described = "<missing>"
                elif isinstance(value, str):
                    described = "<blank>"
                else:
                    described = f"<a JSON {type(value).__name__}>"
                self.problem(no, name, described, "a non-empty string (required)", safe=True)
                return
            ids.append(value.strip())
        data = {name: obj[name] for name in JSONL_RECORD_KEYS if name in obj}
        data["account_ref"] = "-"  # placeholder; replaced once the reference is computed
        try:
            parsed = record_from_mapping(data)
        except InvalidRecord as exc:
            self.invalid(no, exc)
            return
        values = {name: getattr(parsed, name) for name in JSONL_RECORD_KEYS}
        self.accept(no, ids[0], "", ids[1], values)
