"""Pseudonyms: normalization of national IDs, the HMAC, and refusing anything else as a subject."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from orchestrator.boundaries import Secret
from orchestrator.credit import InvalidRecord, check_subject, normalize_national_id, pseudonym
from orchestrator.errors import ConfigError

SECRET = Secret("consortium-test-secret-0123456789abcdef")
# Known answer: HMAC-SHA256(key=SECRET.value as UTF-8, msg=b"123456789"), computed once
# with Python's hmac module; a change of normalization or encoding breaks it.
KAT = "eceec1f531e1a3f11170e7e0fbab6dab4014f16b0e3967c6f34db60088e6e3cd"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("123-45-6789", "123456789"),
        (" 123 45 6789 ", "123456789"),
        ("123\t45\n6789", "123456789"),
        ("123\u00a045\u20136789", "123456789"),  # no-break space, en dash
        ("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "123456789"),  # full width
        ("ab-123456-c", "AB123456C"),
        ("x1234567", "X1234567"),
        ("A" * 32, "A" * 32),
        ("1234", "1234"),
    ],
)
def test_normalization(raw: str, normalized: str) -> None:
    assert normalize_national_id(raw) == normalized


def test_known_answer_and_spellings_agree() -> None:
    assert pseudonym(SECRET, "123456789").hex() == KAT
    for spelling in ("123-45-6789", "123 45 6789", " 123456789 "):
        assert pseudonym(SECRET, spelling).hex() == KAT
    expected = hmac.new(SECRET.value.encode(), b"AB123456C", hashlib.sha256).digest()
    assert pseudonym(SECRET, "ab-123456-c") == expected


def test_another_secret_gives_another_subject() -> None:
    other = Secret("another-consortium-secret-0123456789")
    assert pseudonym(other, "123-45-6789") != pseudonym(SECRET, "123-45-6789")
    assert len(pseudonym(other, "123-45-6789")) == 32


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("", "0 characters"),
        ("123", "3 characters"),
        ("- -", "0 characters"),
        ("12/34/5678", "contains '/'"),
        ("1" * 33, "33 characters"),
        ("\u00c4BC12345", "contains '\u00c4'"),
        ("123.456.789", "contains '.'"),
    ],
)
def test_malformed_national_id_is_refused_without_showing_it(raw: str, detail: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        pseudonym(SECRET, raw)
    assert caught.value.field == "national_id"
    message = str(caught.value)
    assert message.startswith("national_id: ")
    assert detail in message
    assert "4 to 32 letters or digits" in message
    if len(raw) > 6:
        assert raw not in message


@pytest.mark.parametrize("secret", [Secret("short"), Secret(""), "not-a-Secret-" * 4])
def test_short_or_missing_secret_is_a_config_error(secret: object) -> None:
    with pytest.raises(ConfigError, match="pseudonym secret") as caught:
        pseudonym(secret, "123456789")  # type: ignore[arg-type]
    assert "token_hex" in str(caught.value)


def test_subjects_are_32_bytes_or_0x_hex() -> None:
    raw = pseudonym(SECRET, "123456789")
    assert check_subject(raw) == raw
    assert check_subject(bytearray(raw)) == raw
    assert check_subject("0x" + raw.hex()) == raw
    assert check_subject("0x" + raw.hex().upper()) == raw


@pytest.mark.parametrize(
    "subject",
    ["123-45-6789", "123456789", b"\x01" * 31, b"\x01" * 33, "0x" + "ab" * 31, bytes(32), 42],
)
def test_anything_else_is_a_malformed_subject(subject: object) -> None:
    with pytest.raises(InvalidRecord) as caught:
        check_subject(subject)
    assert caught.value.field == "subject"
    assert "123-45-6789" not in str(caught.value)
