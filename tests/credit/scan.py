"""Scanning a chain for personal data: every spelling of a national ID, and every byte
of every transaction input and log on the chain (used by the privacy tests)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from web3 import Web3

from orchestrator.credit import normalize_national_id


def needles(national_id: str) -> dict[str, bytes]:
    """Every spelling of the ID whose bytes must not appear on chain."""
    out: dict[str, bytes] = {}
    for form in {national_id, normalize_national_id(national_id)}:
        for encoding in ("ascii", "utf-8", "utf-16-be", "utf-16-le"):
            raw = form.encode(encoding)
            out[f"{form!r} {encoding}"] = raw
            out[f"{form!r} {encoding} as hex text"] = raw.hex().encode()
    digits = normalize_national_id(national_id)
    if digits.isdigit():
        number = int(digits)
        out[f"{digits} as an integer"] = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return out


def chain_bytes(w3: Web3) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every transaction input, log topic and log data on the chain."""
    for number in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            assert not isinstance(tx, bytes)
            yield f"block {number} tx {tx['hash'].hex()} input", bytes(tx["input"])
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            for log in receipt["logs"]:
                where = f"block {number} log {log['logIndex']}"
                yield f"{where} data", bytes(log["data"])
                for i, topic in enumerate(log["topics"]):
                    yield f"{where} topic {i}", bytes(topic)


def scan(w3: Web3, national_ids: Iterable[str], subjects: set[bytes]) -> tuple[list[str], int]:
    """Leaks of any spelling of `national_ids` on the chain, and how many items were read.

    Asserts the scan is not vacuous: it found every one of `subjects` (the pseudonyms of
    what was written) somewhere on the chain.
    """
    forbidden = {
        f"{nid!r}: {name}": raw for nid in national_ids for name, raw in needles(nid).items()
    }
    seen: set[bytes] = set()
    scanned = 0
    leaks: list[str] = []
    for where, data in chain_bytes(w3):
        scanned += 1
        seen |= {s for s in subjects if s in data}
        leaks += [f"{name} in {where}" for name, raw in forbidden.items() if raw in data]
    assert seen == subjects, "the scan did not find the writes it was meant to check"
    return leaks, scanned
