"""No national ID on chain: after writes through the SDK and the CLI with every test ID,
scan every block's transaction inputs and every receipt's logs for the IDs' bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.credit import CreditClient, normalize_national_id
from orchestrator.credit.cli import credit
from orchestrator.credit.records import record_to_mapping
from tests.credit.conftest import NATIONAL_IDS, Chain, record

pytestmark = [pytest.mark.geth, pytest.mark.slow]


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


def chain_bytes(chain: Chain) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every transaction input, log topic and log data on the chain."""
    w3 = chain.w3()
    for number in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            yield f"block {number} tx {tx['hash'].hex()} input", bytes(tx["input"])
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            for log in receipt["logs"]:
                where = f"block {number} log {log['logIndex']}"
                yield f"{where} data", bytes(log["data"])
                for i, topic in enumerate(log["topics"]):
                    yield f"{where} topic {i}", bytes(topic)


def test_no_national_id_appears_on_chain(
    chain: Chain,
    registry: str,
    bank_a: CreditClient,
    bank_b: CreditClient,
    tmp_path: Path,
) -> None:
    # Writes with every ID: reports, a dispute and its resolution through the SDK, ...
    pending = []
    for i, national_id in enumerate(NATIONAL_IDS):
        pending.append(bank_a.report(bank_a.subject(national_id), record(f"PRIV-{i}")))
    for p in pending:
        p.wait()
    subject = bank_b.subject(NATIONAL_IDS[0])
    bank_b.dispute(subject, bank_a.address, "PRIV-0").wait()
    bank_a.resolve(subject, "PRIV-0").wait()
    # ... and a report through the CLI, which takes the raw ID on its command line.
    key = tmp_path / "b.key"
    key.write_text(chain.keys["bank_b"].value)
    secret = tmp_path / "secret"
    secret.write_text(chain.pseudonym_secret.value)
    for f in (key, secret):
        f.chmod(0o600)
    record_file = tmp_path / "r.yaml"
    record_file.write_text(yaml.safe_dump(record_to_mapping(record("PRIV-CLI"))))
    result = CliRunner().invoke(
        credit,
        [
            "--rpc-url", chain.rpc_url, "--registry", registry, "--key-file", str(key),
            "--secret-file", str(secret), "report", "--bank", "bank-b",
            "--subject", NATIONAL_IDS[1], "--file", str(record_file),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    forbidden = {
        f"{nid!r}: {name}": raw for nid in NATIONAL_IDS for name, raw in needles(nid).items()
    }
    subjects = {bank_a.subject(nid) for nid in NATIONAL_IDS}
    seen_subjects: set[bytes] = set()
    scanned = 0
    leaks = []
    for where, data in chain_bytes(chain):
        scanned += 1
        seen_subjects |= {s for s in subjects if s in data}
        leaks += [f"{name} in {where}" for name, raw in forbidden.items() if raw in data]
    assert not leaks, leaks
    # The scan is not vacuous: it read the writes above, whose pseudonyms it found.
    assert seen_subjects == subjects
    assert scanned > 3 * len(NATIONAL_IDS)
