"""`poactl credit furnish` on real geth: a Metro 2 file in batches, refused lines reported
while the good ones go, nothing personal on chain, stale records refused, and a run killed
with SIGKILL resumed without writing any version twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from web3 import Web3
from web3.types import FilterParams, LogReceipt

from orchestrator.boundaries import Secret
from orchestrator.cli.credit import credit
from orchestrator.credit import CreditClient
from orchestrator.credit.furnish import account_ref_for
from orchestrator.credit.metro2 import (
    format_base_segment,
    format_header,
    format_trailer,
    write_metro2,
)
from orchestrator.credit.records import Record
from tests.credit.conftest import TODAY, Chain, record
from tests.credit.scan import chain_bytes

pytestmark = [pytest.mark.geth, pytest.mark.slow]

POACTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "poactl"


def furnish(chain: Chain, registry: str, files: dict[str, Path], path: Path, *extra: str) -> Result:
    options = [
        "--rpc-url", chain.rpc_url, "--registry", registry,
        "--key-file", str(files["bank_a"]), "--secret-file", str(files["secret"]),
        "--account-ref-key-file", str(files["account_ref_key"]),
    ]  # fmt: skip
    return CliRunner().invoke(
        credit, [*options, "furnish", "--bank", "bank-a", "--file", str(path), *extra]
    )


def accounts(tag: str, n: int) -> list[tuple[str, str, Record]]:
    """n accounts: (national ID, account number, record); IDs of 9 characters (SSN)."""
    return [
        (f"{tag}{i:05d}", f"40000000{tag}{i:05d}", record(f"placeholder-{i}", current_balance=i))
        for i in range(n)
    ]


def test_account_references_are_keyed_stable_and_opaque() -> None:
    key = Secret("11" * 32)
    ref = account_ref_for(key, "4000000012345")
    assert ref == account_ref_for(key, " 4000000012345 ") and len(ref) == 32
    assert ref.startswith("M2-") and "12345" not in ref
    assert ref != account_ref_for(key, "4000000012346")
    assert ref != account_ref_for(Secret("22" * 32), "4000000012345")


def test_furnishing_needs_the_banks_account_reference_key(
    chain: Chain, registry: str, files: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "one.jsonl"
    write_jsonl(path, accounts("NK", 1))
    options = [
        "--rpc-url", chain.rpc_url, "--registry", registry,
        "--key-file", str(files["bank_a"]), "--secret-file", str(files["secret"]),
    ]  # fmt: skip
    result = CliRunner().invoke(
        credit, [*options, "furnish", "--bank", "bank-a", "--file", str(path)]
    )
    assert result.exit_code == 1
    assert "no account-reference key for bank-a" in result.output
    assert "--account-ref-key-file" in result.output


def test_a_metro2_file_goes_in_batches_and_bad_lines_are_reported(
    chain: Chain, registry: str, files: dict[str, Path], bank_b: CreditClient, tmp_path: Path
) -> None:
    items = accounts("MA", 230)
    lines = [format_header("BANK", TODAY)]
    for i, (nid, number, rec) in enumerate(items):
        segment = format_base_segment(
            rec, national_id=nid, account_number=number, surname="QUIXOTEZ", first_name="ALONSO"
        )
        if i == 10:
            segment = segment[:123] + "99" + segment[125:]  # account status 99: no such code
        if i == 20:
            segment = segment[:75] + "02302023" + segment[83:]  # date opened: Feb 30
        lines.append(segment)
    lines.append(format_trailer(len(items)))
    path = tmp_path / "portfolio.m2"
    path.write_text("\n".join(lines) + "\n")

    result = furnish(chain, registry, files, path, "--batch", "50")
    assert result.exit_code == 1, result.output  # two lines refused: the status says so
    assert "bank-a furnished 228 records in 5 transactions" in result.output
    assert "refused: line 12: account_status '99'" in result.output  # header is line 1
    assert "refused: line 22: date_opened" in result.output

    # Bank B reads what bank A furnished; the reference is keyed, never the number.
    nid, number, sent = items[3]
    (line,) = bank_b.get(bank_b.subject(nid)).tradelines
    assert line.record.current_balance == 3 and line.version == 1
    assert line.record.account_ref.startswith("M2-") and number not in line.record.account_ref
    assert dataclasses.replace(line.record, account_ref=sent.account_ref) == sent

    # Again: nothing is sent, the same two lines are refused.
    again = furnish(chain, registry, files, path, "--format", "json")
    assert again.exit_code == 1
    doc = json.loads(again.output)
    assert (doc["written"], doc["unchanged"], doc["batches"]) == (0, 228, 0)
    assert [p["line"] for p in doc["problems"]] == [12, 22]

    # Nothing the bank keeps to itself is on chain: IDs, account numbers, names.
    needles = [nid.encode() for nid, _, _ in items[:5]] + [n.encode() for _, n, _ in items[:5]]
    needles += [b"QUIXOTEZ", b"ALONSO"]
    leaks = [where for where, data in chain_bytes(chain.w3()) for n in needles if n in data]
    assert not leaks, leaks[:5]


def test_a_stale_record_is_refused_and_a_newer_one_updates(
    chain: Chain, registry: str, files: dict[str, Path], bank_a: CreditClient, tmp_path: Path
) -> None:
    items = accounts("ST", 3)
    first = tmp_path / "may.jsonl"
    write_jsonl(first, items)
    assert furnish(chain, registry, files, first).exit_code == 0

    month_ago = TODAY - dt.timedelta(days=40)
    older = [
        (n, a, dataclasses.replace(r, date_of_account_information=month_ago))
        for n, a, r in items[:1]
    ]
    newer = [(n, a, dataclasses.replace(r, current_balance=99)) for n, a, r in items[1:]]
    second = tmp_path / "june.jsonl"
    write_jsonl(second, older + newer)
    result = furnish(chain, registry, files, second)
    assert result.exit_code == 1
    assert "bank-a furnished 2 records" in result.output
    assert "refused: line 1: date_of_account_information" in result.output
    assert "an older report is stale" in result.output
    (line,) = bank_a.get(bank_a.subject(items[1][0])).tradelines
    assert (line.record.current_balance, line.version) == (99, 2)


def write_jsonl(path: Path, items: list[tuple[str, str, Record]]) -> None:
    rows = []
    for nid, number, rec in items:
        doc = {k: v for k, v in dataclasses.asdict(rec).items() if k != "account_ref"}
        for name in ("date_opened", "date_of_account_information"):
            doc[name] = doc[name].isoformat()
        rows.append(json.dumps({"national_id": nid, "account_number": number, **doc}))
    path.write_text("\n".join(rows) + "\n")


def test_a_run_killed_mid_file_resumes_and_writes_no_version_twice(
    chain: Chain, registry: str, files: dict[str, Path], bank_a: CreditClient, tmp_path: Path
) -> None:
    items = accounts("KL", 1500)
    path = tmp_path / "big.m2"
    assert write_metro2(path, items) == 1500
    argv = [
        str(POACTL), "credit", "--rpc-url", chain.rpc_url, "--registry", registry,
        "--key-file", str(files["bank_a"]), "--secret-file", str(files["secret"]),
        "--account-ref-key-file", str(files["account_ref_key"]),
        "furnish", "--bank", "bank-a", "--file", str(path), "--batch", "50",
    ]  # fmt: skip
    w3 = chain.w3()
    start = w3.eth.block_number + 1  # earlier tests' writes are at or below the head
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reported = Web3.keccak(text="Reported(bytes32,address,bytes32,uint256,bytes32,bytes32,bytes2)")
    try:
        deadline = time.monotonic() + 60
        while not _logs(w3, registry, reported, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-file: some batches in, others in flight
    finally:
        proc.wait(timeout=10)
    partial = len(_logs(w3, registry, reported, start))
    assert 0 < partial < 1500, partial

    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    time.sleep(3)  # batches the killed run left in the pool land (and write nothing)
    logs = _logs(w3, registry, reported, start)
    assert len(logs) == 1500  # every record once: none twice, none missing
    assert len({bytes(log["topics"][1]) for log in logs}) == 1500
    line = bank_a.tradeline(
        bank_a.subject(items[1499][0]), bank_a.furnisher, _ref(files, items[1499])
    )
    assert line is not None and line.version == 1


def _ref(files: dict[str, Path], item: tuple[str, str, Record]) -> str:
    return account_ref_for(Secret(files["account_ref_key"].read_text().strip()), item[1])


def _logs(w3: Web3, registry: str, topic: bytes, start: int) -> list[LogReceipt]:
    query: FilterParams = {
        "address": Web3.to_checksum_address(registry),
        "fromBlock": start,
        "topics": ["0x" + bytes(topic).hex()],
    }
    return list(w3.eth.get_logs(query))
