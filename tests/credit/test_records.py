"""Client-side record validation, parsing from YAML, contract encoding and the summary."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
import yaml

from orchestrator.credit import InvalidRecord, Record, Tradeline, summarize, validate_record
from orchestrator.credit.records import (
    AMOUNT_MAX,
    RECORD_BYTES,
    TradelineState,
    commitment,
    record_from_contract,
    record_from_mapping,
    record_to_contract,
    record_to_mapping,
    tradeline_at,
)

TODAY = dt.date(2024, 6, 15)
GOOD = Record(
    account_ref="LOAN-0001",
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


def bad(**changes: Any) -> Record:
    return dataclasses.replace(GOOD, **changes)


def test_a_good_record_passes_unchanged() -> None:
    assert validate_record(GOOD, today=TODAY) is GOOD
    paid = bad(account_status="13", current_balance=0, payment_rating="0")
    assert validate_record(paid, today=TODAY) is paid
    late = bad(account_status="78", amount_past_due=900, payment_history="21" + "0" * 22)
    assert validate_record(late, today=TODAY) is late


INVALID = [
    pytest.param(
        bad(account_status="99"), "account_status", "99", "05, 11, 13, 61", id="status-99"
    ),
    pytest.param(bad(account_status="1"), "account_status", "1", "84, 88, 89, 93", id="status-1"),
    pytest.param(bad(account_status=11), "account_status", 11, "as text", id="status-int"),
    pytest.param(bad(portfolio_type="X"), "portfolio_type", "X", "C, I, M, O, R", id="portfolio"),
    pytest.param(bad(account_type="ZZ"), "account_type", "ZZ", "Metro 2 codes", id="acct-type"),
    pytest.param(bad(payment_rating="7"), "payment_rating", "7", "or blank", id="rating-7"),
    pytest.param(bad(compliance_condition="XZ"), "compliance_condition", "XZ", "XA", id="ccc"),
    pytest.param(bad(special_comment="ZZ"), "special_comment", "ZZ", "or blank", id="comment"),
    pytest.param(bad(current_balance=-1), "current_balance", -1, "from 0 to", id="negative"),
    pytest.param(bad(credit_limit=-5), "credit_limit", -5, "from 0 to", id="negative-limit"),
    pytest.param(
        bad(highest_credit=AMOUNT_MAX + 1), "highest_credit", AMOUNT_MAX + 1, "0 to", id="huge"
    ),
    pytest.param(bad(current_balance=True), "current_balance", True, "whole", id="bool-amount"),
    pytest.param(bad(current_balance=1.5), "current_balance", 1.5, "whole", id="float-amount"),
    pytest.param(
        bad(date_of_account_information=dt.date(2024, 6, 20)),
        "date_of_account_information",
        "2024-06-20",
        "to today",
        id="future-date",
    ),
    pytest.param(
        bad(date_opened=dt.date(1899, 12, 31)), "date_opened", "1899-12-31", "1900", id="too-old"
    ),
    pytest.param(
        bad(date_opened=dt.datetime(2022, 1, 1, 12)),
        "date_opened",
        dt.datetime(2022, 1, 1, 12),
        "calendar date",
        id="datetime-not-date",
    ),
    pytest.param(
        bad(date_opened="2022-01-10"), "date_opened", "2022-01-10", "calendar date", id="str-date"
    ),
    pytest.param(
        bad(date_opened=dt.date(2024, 6, 1)),
        "date_opened",
        "2024-06-01",
        "on or before date_of_account_information",
        id="opened-after-info",
    ),
    pytest.param(bad(payment_history="0" * 23), "payment_history", "0" * 23, "24 char", id="23"),
    pytest.param(bad(payment_history="0" * 25), "payment_history", "0" * 25, "24 char", id="25"),
    pytest.param(
        bad(payment_history="00000Z" + "0" * 18), "payment_history[5]", "Z", "0123456BDE", id="Z"
    ),
    pytest.param(
        bad(payment_history="0000 0" + "0" * 18), "payment_history[4]", " ", "each one", id="sp"
    ),
    pytest.param(
        bad(amount_past_due=15_001), "amount_past_due", 15_001, "at most current_balance", id="pd"
    ),
    pytest.param(
        bad(account_status="13", current_balance=0),
        "payment_rating",
        "",
        "with account status 13",
        id="rating-missing",
    ),
    pytest.param(
        bad(payment_rating="0"), "payment_rating", "0", "blank with account status 11", id="rating"
    ),
    pytest.param(
        bad(account_status="13", payment_rating="0"),
        "current_balance",
        15_000,
        "0 with paid/closed",
        id="paid-with-balance",
    ),
    pytest.param(
        bad(account_status="71"), "amount_past_due", 0, "more than 0 with past-due", id="late"
    ),
    pytest.param(
        bad(compliance_condition="XH"), "compliance_condition", "XH", "resolve()", id="ccc-xh"
    ),
    pytest.param(bad(account_ref=""), "account_ref", "", "1 to 32", id="ref-empty"),
    pytest.param(bad(account_ref="A" * 33), "account_ref", "A" * 33, "1 to 32", id="ref-33"),
    pytest.param(bad(account_ref="LOAN 1"), "account_ref", "LOAN 1", "letters", id="ref-space"),
    pytest.param(bad(account_ref="-LOAN"), "account_ref", "-LOAN", "letters", id="ref-dash"),
]


@pytest.mark.parametrize(("record", "field", "value", "allowed"), INVALID)
def test_invalid_record_names_field_value_and_what_is_allowed(
    record: Record, field: str, value: object, allowed: str
) -> None:
    with pytest.raises(InvalidRecord) as caught:
        validate_record(record, today=TODAY)
    e = caught.value
    assert (e.field, e.value) == (field, value)
    message = str(e)
    assert message.startswith(f"{field}: {value!r} is not allowed; expected ")
    assert allowed in message
    assert "nothing was sent to the chain" in message


def test_every_known_status_code_is_accepted_with_a_fitting_record() -> None:
    from orchestrator.credit import codes

    for status in codes.STATUS:
        record = bad(
            account_status=status,
            payment_rating="1" if status in codes.STATUS_NEEDS_RATING else "",
            current_balance=0 if status in codes.STATUS_ZERO_BALANCE else 500,
            amount_past_due=100 if status in codes.STATUS_PAST_DUE else 0,
        )
        assert validate_record(record, today=TODAY) is record


# -- parsing ----------------------------------------------------------------------------

RECORD_YAML = """
account_ref: LOAN-0001
portfolio_type: I
account_type: 00          # stays "00": every scalar is read as text
date_opened: 2022-01-10
date_of_account_information: 2024-05-31
credit_limit: 0
highest_credit: 20_000
current_balance: 15000
amount_past_due: 0
account_status: 11
payment_history: "000000000000BBBBBBBBBBBB"
"""


def test_record_from_yaml_keeps_codes_as_text() -> None:
    data = yaml.load(RECORD_YAML, Loader=yaml.BaseLoader)
    assert record_from_mapping(data) == GOOD


def test_record_mapping_round_trip() -> None:
    assert record_from_mapping(record_to_mapping(GOOD)) == GOOD
    assert record_to_mapping(GOOD)["date_opened"] == "2022-01-10"


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"balance": "5"}, "balance", "one of account_ref"),
        ({"date_opened": "2024-02-30"}, "date_opened", "YYYY-MM-DD"),
        ({"date_opened": "10/01/2022"}, "date_opened", "YYYY-MM-DD"),
        ({"current_balance": "12.5"}, "current_balance", "whole number"),
        ({"current_balance": "lots"}, "current_balance", "whole number"),
    ],
)
def test_record_from_mapping_refuses_bad_data(
    changes: dict[str, str], field: str, allowed: str
) -> None:
    data = {**record_to_mapping(GOOD), **changes}
    with pytest.raises(InvalidRecord) as caught:
        record_from_mapping(data)
    assert caught.value.field == field
    assert allowed in str(caught.value)


def test_record_from_mapping_names_a_missing_field() -> None:
    data = record_to_mapping(GOOD)
    del data["account_status"]
    with pytest.raises(InvalidRecord, match=r"account_status: None .* required"):
        record_from_mapping(data)
    with pytest.raises(InvalidRecord, match="a mapping"):
        record_from_mapping(["not", "a", "mapping"])  # type: ignore[arg-type]


# -- contract encoding ------------------------------------------------------------------

FURNISHER = "0x7e5f4552091A69125d5DFcD7B8C2659029395bDF"


def test_contract_encoding_round_trips() -> None:
    record = bad(payment_rating="", special_comment="AC", compliance_condition="XB")
    packed = record_to_contract(record)
    assert len(packed) == RECORD_BYTES
    assert packed[1:3] == b"00" and packed[3:7] == (20220110).to_bytes(4, "big")
    assert packed[33:34] == b"\0" and packed[64:66] == b"XB"
    assert record_from_contract("LOAN-0001", packed) == record
    assert commitment(packed) != commitment(record_to_contract(bad(current_balance=1)))


def test_a_state_word_decodes_and_dresses_the_last_report() -> None:
    word = (
        (0xAB << 128) | (1_700_000_000 << 80) | (int.from_bytes(b"XB", "big") << 64)
        | (20240131 << 32) | 3
    )  # fmt: skip
    state = TradelineState.of(word)
    assert state == TradelineState(3, 20240131, "XB", 1_700_000_000, 0xAB)
    line = tradeline_at(b"\x01" * 32, FURNISHER.lower(), state, bad(compliance_condition=""))
    assert (line.furnisher, line.version, line.record.compliance_condition) == (FURNISHER, 3, "XB")
    assert line.updated_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert TradelineState.of(0).version == 0


# -- summary ----------------------------------------------------------------------------

A, B = FURNISHER, "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"


def line(furnisher: str, ref: str, **changes: Any) -> Tradeline:
    return Tradeline(
        subject=b"\x01" * 32,
        furnisher=furnisher,
        record=dataclasses.replace(GOOD, account_ref=ref, **changes),
        version=1,
        updated_at=dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
    )


def test_summary_across_banks() -> None:
    lines = [
        line(A, "CARD", current_balance=1_000),
        line(
            A,
            "OLD",
            account_status="97",
            current_balance=500,
            amount_past_due=500,
            payment_history="LLL654321000BBBBBBBBBBBB",
        ),
        line(B, "AUTO", account_status="71", amount_past_due=50, compliance_condition="XB"),
        line(B, "PAID", account_status="13", current_balance=0, payment_rating="0"),
        line(B, "GONE", account_status="DA", current_balance=99_999),
    ]
    s = summarize(lines)
    assert s.accounts == 4  # DA does not count
    assert s.open_accounts == 3  # 13 with zero balance is closed
    assert s.total_balance == 1_000 + 500 + 15_000
    assert s.total_past_due == 550
    assert s.worst_status == "97"
    assert s.delinquencies == 2
    assert s.late_months == 9  # L L L 6 5 4 3 2 1
    assert s.disputed == 1
    assert s.furnishers == 2


def test_summary_of_nothing() -> None:
    s = summarize([])
    assert (s.accounts, s.total_balance, s.worst_status, s.delinquencies) == (0, 0, None, 0)
    only_deleted = summarize([line(A, "X", account_status="DF")])
    assert only_deleted.accounts == 0 and only_deleted.worst_status is None
