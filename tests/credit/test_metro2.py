"""Reading a bank's furnishing file (Metro 2 426-character format, JSON Lines)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.credit.furnishing_file import (
    FileRecord,
    LineProblem,
    ReadFile,
    read_furnishing_file,
)
from orchestrator.credit.metro2 import (
    BASE_FIELDS,
    RECORD_LENGTH,
    format_base_segment,
    format_header,
    format_trailer,
    write_metro2,
)
from orchestrator.credit.records import Record
from orchestrator.errors import ConfigError

TODAY = dt.date(2024, 6, 15)
GOOD = Record(
    account_ref="placeholder",
    portfolio_type="I",
    account_type="00",
    date_opened=dt.date(2022, 1, 10),
    date_of_account_information=dt.date(2024, 5, 31),
    credit_limit=0,
    highest_credit=20_000,
    current_balance=15_000,
    amount_past_due=0,
    account_status="11",
    payment_history="000000000000BBBBBBBBBBBB",
)
PAID = dataclasses.replace(
    GOOD, account_status="13", current_balance=0, payment_rating="0", special_comment="M"
)
LATE = dataclasses.replace(
    GOOD,
    portfolio_type="R",
    account_type="18",
    credit_limit=5_000,
    highest_credit=4_200,
    current_balance=4_100,
    amount_past_due=300,
    account_status="78",
    payment_history="21000000DDD00000000BBBBB",
    compliance_condition="XB",
)
IDS = ("123456789", "987654321", "555012222", "444556666")
ACCOUNTS = ("LOAN-000123456", "CARD-4111111111", "LOAN-000999888", "LOAN-000777666")


def ref(identification: str, account_number: str) -> str:
    """A stand-in for the caller's keyed reference: opaque enough for the tests."""
    return f"ref-{abs(hash((identification, account_number))) % 10**12}"


def read(path: Path) -> ReadFile:
    return read_furnishing_file(path, account_ref=ref, today=TODAY)


def put(segment: str, name: str, text: str) -> str:
    """`segment` with the base-segment field `name` overwritten by `text`."""
    first, last, _ = BASE_FIELDS[name]
    assert len(text) == last - first + 1
    return segment[: first - 1] + text + segment[last:]


def metro2_lines(items: list[tuple[str, str, Record]], count: int | None = None) -> list[str]:
    segments = [format_base_segment(r, national_id=n, account_number=a) for n, a, r in items]
    return [
        format_header("BANK", TODAY),
        *segments,
        format_trailer(len(segments) if count is None else count),
    ]


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def only_problem(result: ReadFile) -> LineProblem:
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


ITEMS = [(IDS[0], ACCOUNTS[0], GOOD), (IDS[1], ACCOUNTS[1], LATE), (IDS[2], ACCOUNTS[2], PAID)]


# -- round trip -----------------------------------------------------------------------


def test_formatted_records_are_426_characters_with_their_identifiers() -> None:
    header = format_header("BANK", TODAY)
    trailer = format_trailer(7)
    segment = format_base_segment(GOOD, national_id="123-45-6789", account_number="A1")
    assert len(header) == len(trailer) == len(segment) == RECORD_LENGTH
    assert header[:4] == trailer[:4] == segment[:4] == "0426"
    assert header[4:10] == "HEADER"
    assert header[47:55] == "06152024"  # activity date, MMDDYYYY
    assert trailer[4:11] == "TRAILER"
    assert trailer[11:20] == "000000007"
    assert segment[297:306] == "123456789"  # Social Security Number, positions 298-306
    assert segment[42:72] == "A1".ljust(30)  # Consumer Account Number, positions 43-72
    assert segment[123:125] == "11"  # Account Status, positions 124-125
    assert segment[126:150] == GOOD.payment_history  # positions 127-150
    assert segment[154:163] == "000015000"  # Current Balance, positions 155-163
    assert segment[181:189] == "05312024"  # Date of Account Information, 182-189
    assert segment[231:256].rstrip() == "DOE"  # Surname, positions 232-256


def test_round_trip_gives_the_same_records(tmp_path: Path) -> None:
    path = tmp_path / "furnish.txt"
    assert write_metro2(path, ITEMS, identification_number="BANK01") == 3
    calls: list[tuple[str, str]] = []

    def recording_ref(identification: str, account_number: str) -> str:
        calls.append((identification, account_number))
        return ref(identification, account_number)

    result = read_furnishing_file(path, account_ref=recording_ref, today=TODAY)
    assert result.format == "metro2"
    assert result.problems == []
    assert calls == [("BANK01", a) for _, a, _ in ITEMS]
    assert [(f.line, f.national_id, f.account_number) for f in result.records] == [
        (2, IDS[0], ACCOUNTS[0]),
        (3, IDS[1], ACCOUNTS[1]),
        (4, IDS[2], ACCOUNTS[2]),
    ]
    for (_, account, record), got in zip(ITEMS, result.records, strict=True):
        expected = dataclasses.replace(record, account_ref=ref("BANK01", account))
        assert got.record == expected


def test_crlf_and_blank_lines_and_appended_segments(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS[:2])
    lines[1] = "0626" + lines[1][4:] + "J1" + " " * 198  # an appended 200-character segment
    lines.insert(2, "")
    result = read(write_lines(tmp_path / "crlf.txt", lines, newline="\r\n"))
    assert result.problems == []
    assert [f.line for f in result.records] == [2, 4]
    assert [f.record.account_status for f in result.records] == ["11", "78"]


def test_a_trailer_without_a_count_is_accepted(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[-1] = lines[-1][:11] + " " * 9 + lines[-1][20:]
    assert len(read(write_lines(tmp_path / "f.txt", lines)).records) == 3


# -- line problems --------------------------------------------------------------------


def test_bad_date_names_line_field_and_metro2_positions(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[2] = put(lines[2], "date_opened", "13452022")
    problem = only_problem(read(write_lines(tmp_path / "f.txt", lines)))
    assert (problem.line, problem.field, problem.value) == (3, "date_opened", "13452022")
    assert "MMDDYYYY" in problem.rule
    assert "Date Opened, positions 76-83" in problem.rule
    assert str(problem).startswith("line 3: date_opened '13452022': ")


def test_non_numeric_amount_is_a_problem(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[1] = put(lines[1], "current_balance", "00001500X")
    problem = only_problem(read(write_lines(tmp_path / "f.txt", lines)))
    assert (problem.line, problem.field) == (2, "current_balance")
    assert "positions 155-163" in problem.rule


def test_unknown_code_names_its_line_and_field_and_good_records_survive(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[2] = put(lines[2], "account_status", "99")
    result = read(write_lines(tmp_path / "f.txt", lines))
    problem = only_problem(result)
    assert (problem.line, problem.field, problem.value) == (3, "account_status", "99")
    assert "05, 11, 13" in problem.rule
    assert str(problem).startswith("line 3: account_status '99': ")
    assert [f.line for f in result.records] == [2, 4]


def test_blank_in_payment_history_is_a_problem(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[1] = put(lines[1], "payment_history", "000000000000BBBBBBBBBBB ")
    problem = only_problem(read(write_lines(tmp_path / "f.txt", lines)))
    assert (problem.line, problem.field, problem.value) == (2, "payment_history[23]", " ")


def test_short_line_is_a_problem(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[2] = lines[2].rstrip()  # an editor trimmed the blank residence code and more
    result = read(write_lines(tmp_path / "f.txt", lines))
    problem = only_problem(result)
    assert (problem.line, problem.field) == (3, "record")
    assert "426" in problem.rule
    assert len(result.records) == 2


def test_duplicate_account_is_refused_the_second_time(tmp_path: Path) -> None:
    items = [*ITEMS, (IDS[0], ACCOUNTS[0], PAID)]
    result = read(write_lines(tmp_path / "f.txt", metro2_lines(items)))
    problem = only_problem(result)
    assert (problem.line, problem.field) == (5, "account_number")
    assert "appear twice; line 2 has it" in problem.rule
    assert [f.line for f in result.records] == [2, 3, 4]


def test_same_account_number_for_two_consumers_is_not_a_duplicate(tmp_path: Path) -> None:
    items = [(IDS[0], ACCOUNTS[0], GOOD), (IDS[1], ACCOUNTS[0], GOOD)]
    assert read(write_lines(tmp_path / "f.txt", metro2_lines(items))).problems == []


@pytest.mark.parametrize(
    ("ssn", "rule"),
    [
        ("12345.789", "letters or digits"),
        ("000000000", "zero- or 9-filled"),
        ("999999999", "zero- or 9-filled"),
        ("         ", "not blank"),
        ("123      ", "4 to 32"),
    ],
)
def test_bad_national_id_is_a_problem(tmp_path: Path, ssn: str, rule: str) -> None:
    lines = metro2_lines(ITEMS)
    lines[3] = put(lines[3], "national_id", ssn)
    result = read(write_lines(tmp_path / "f.txt", lines))
    problem = only_problem(result)
    assert (problem.line, problem.field) == (4, "national_id")
    assert rule in problem.rule
    assert "Social Security Number, positions 298-306" in problem.rule
    if len(ssn.strip()) > 6:
        assert ssn.strip() not in str(problem)
    assert len(result.records) == 2


def test_missing_account_number_is_a_problem(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines[1] = put(lines[1], "consumer_account_number", " " * 30)
    problem = only_problem(read(write_lines(tmp_path / "f.txt", lines)))
    assert (problem.line, problem.field) == (2, "consumer_account_number")


def test_problems_never_show_a_national_id_or_account_number(tmp_path: Path) -> None:
    lines = metro2_lines([*ITEMS, (IDS[0], ACCOUNTS[0], GOOD)])  # a duplicate
    lines[2] = put(lines[2], "national_id", "98765432.")  # a bad ID
    lines[3] = put(lines[3], "account_status", "99")
    result = read(write_lines(tmp_path / "f.txt", lines))
    assert len(result.problems) == 3
    shown = "\n".join(str(p) + repr(p) for p in result.problems)
    shown += repr(result.records)
    for secret in (*IDS, "98765432", *ACCOUNTS):
        assert secret not in shown
    assert "<14 characters ending 56>" in shown  # the duplicate's account, masked


# -- file problems --------------------------------------------------------------------


def test_missing_trailer_is_a_file_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "f.txt", metro2_lines(ITEMS)[:-1])
    with pytest.raises(ConfigError, match="no Metro 2 trailer") as info:
        read(path)
    assert info.value.obj == str(path)
    assert info.value.hint


def test_missing_header_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Metro 2 header"):
        read(write_lines(tmp_path / "f.txt", metro2_lines(ITEMS)[1:]))


def test_trailer_count_mismatch_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trailer counts 4 base segments .* the file has 3"):
        read(write_lines(tmp_path / "f.txt", metro2_lines(ITEMS, count=4)))


def test_second_header_is_a_file_error(tmp_path: Path) -> None:
    lines = metro2_lines(ITEMS)
    lines.insert(2, format_header("BANK", TODAY))
    with pytest.raises(ConfigError, match="second header record at line 3"):
        read(write_lines(tmp_path / "f.txt", lines))


def test_not_utf8_empty_or_unreadable_is_a_file_error(tmp_path: Path) -> None:
    binary = tmp_path / "packed.bin"
    binary.write_bytes(format_header("BANK", TODAY).encode() + b"\n\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"byte \d+ \(line 2\) is not ASCII or UTF-8"):
        read(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(ConfigError, match="empty"):
        read(empty)
    with pytest.raises(ConfigError, match="cannot read"):
        read(tmp_path / "missing.txt")


# -- JSON Lines -----------------------------------------------------------------------


def jsonl_row(national_id: str, account_number: str, record: Record, **extra: Any) -> str:
    row: dict[str, Any] = {"national_id": national_id, "account_number": account_number}
    for f in dataclasses.fields(Record):
        if f.name != "account_ref":
            value = getattr(record, f.name)
            row[f.name] = value.isoformat() if isinstance(value, dt.date) else value
    row.update(extra)
    return json.dumps(row)


def test_json_lines_gives_the_same_records(tmp_path: Path) -> None:
    lines = [
        jsonl_row(IDS[0], ACCOUNTS[0], GOOD, surname="Doe", first_name="Jane", city="X"),
        "",
        jsonl_row("987-65-4321", ACCOUNTS[1], LATE, date_of_birth="1980-01-01"),
        jsonl_row(IDS[2], ACCOUNTS[2], PAID),
    ]
    result = read(write_lines(tmp_path / "f.jsonl", lines, newline="\r\n"))
    assert result.format == "jsonl"
    assert result.problems == []
    assert [(f.line, f.national_id, f.account_number) for f in result.records] == [
        (1, IDS[0], ACCOUNTS[0]),
        (3, "987-65-4321", ACCOUNTS[1]),
        (4, IDS[2], ACCOUNTS[2]),
    ]
    for (_, account, record), got in zip(ITEMS, result.records, strict=True):
        assert isinstance(got, FileRecord)
        assert got.record == dataclasses.replace(record, account_ref=ref("", account))


def test_json_lines_problems(tmp_path: Path) -> None:
    lines = [
        jsonl_row(IDS[0], ACCOUNTS[0], GOOD),
        '{"national_id": "123", ',
        jsonl_row(IDS[1], ACCOUNTS[1], GOOD, account_status="99"),
        jsonl_row(IDS[2], ACCOUNTS[2], GOOD, ssn=IDS[2]),
        jsonl_row(IDS[3], ACCOUNTS[3], GOOD, date_opened="2022-13-01"),
        json.dumps({"account_number": "X9"}),
        jsonl_row("12.45.6789", ACCOUNTS[3], GOOD),
        jsonl_row(IDS[0], ACCOUNTS[0], PAID),
        "[1, 2]",
    ]
    result = read(write_lines(tmp_path / "f.jsonl", lines))
    assert [f.line for f in result.records] == [1]
    got = {p.line: (p.field, p.value) for p in result.problems}
    assert got[2][0] == "line"
    assert got[3] == ("account_status", "99")
    assert got[4] == ("ssn", "<not shown>")
    assert got[5] == ("date_opened", "2022-13-01")
    assert got[6] == ("national_id", "<missing>")
    assert got[7][0] == "national_id"
    assert got[8][0] == "account_number"
    assert got[9] == ("line", "list")
    shown = "\n".join(map(str, result.problems))
    for secret in (*IDS, "12.45.6789", *ACCOUNTS):
        assert secret not in shown
