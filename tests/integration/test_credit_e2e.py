"""The seed's scenario on a real consortium: two banks, one validator each, run by their
agents over the local store and each bank's local vault (geth 1.13.15).

One consortium serves the module, in file order: the registry's deployment (idempotent,
recorded in the store), Bank A writing through its own node and Bank B reading from its
own, the `credit` commands with only --state-dir, `poactl demo`, the registry's refusals
shown by the CLI, and last a scan of the whole chain for the national IDs used.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from eth_account import Account

from genesis import GOVERNANCE_ADDRESS
from orchestrator.boundaries import Secret
from orchestrator.cli.main import main
from orchestrator.credit import CreditClient
from orchestrator.credit.access import BankAccess
from orchestrator.credit.deployment import CONTRACTS_BLOB, read_registry
from orchestrator.credit.indexed import IndexReader
from orchestrator.credit.metro2 import write_metro2
from orchestrator.credit.records import record_to_mapping
from orchestrator.geth.client import http_web3
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import bank_governance
from orchestrator.local.registry import local_resolver
from orchestrator.network.names import PSEUDONYM_SECRET_NAME
from orchestrator.wiring import make_vault
from tests.credit.conftest import record
from tests.credit.scan import scan
from tests.helpers.chain import wait_until_all_reach
from tests.helpers.ports import consortium_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

NATIONAL_IDS = ("078-05-1120", "219 09 9999", "ZX-998877-Q")  # every one is written below


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    config.write_text(consortium_yaml({"bank-a": 1, "bank-b": 1}, spares=0))
    local = LocalConsortium(root / "state", geth=geth)
    try:
        local.up(config, timeout=90)
        yield local
    finally:
        if local.exists:
            local.down()
        shutil.rmtree(root, ignore_errors=True)


def poactl(local: LocalConsortium, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--state-dir", str(local.layout.root)])


def access(local: LocalConsortium, bank: str) -> BankAccess:
    return local_resolver(local.layout.root).resolve(bank)


def client(local: LocalConsortium, bank: str) -> CreditClient:
    return CreditClient.of(access(local, bank))


def rpc(local: LocalConsortium, node: str) -> str:
    return local.load().node(node).rpc_url


def test_every_bank_holds_the_same_pseudonym_secret(running: LocalConsortium) -> None:
    values = {
        m: make_vault(running._vault(m)).get_secret(PSEUDONYM_SECRET_NAME)
        for m in ("bank-a", "bank-b")
    }
    assert all(isinstance(v, Secret) and len(v.value) >= 32 for v in values.values())
    assert len({v.value for v in values.values() if v is not None}) == 1


def test_deploy_is_idempotent_and_recorded(running: LocalConsortium) -> None:
    network = running.network()
    assert network is not None
    founder = network.members["bank-a"].tx_account
    w3 = http_web3(rpc(running, "bank-a-1"))

    first = poactl(running, "contracts", "deploy")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("CreditRegistry deployed at 0x")
    recorded = read_registry(running.store())
    assert recorded is not None
    assert recorded.deployer == founder and recorded.governance == GOVERNANCE_ADDRESS
    assert recorded.genesis_sha256 == network.genesis_sha256
    assert f"in block {recorded.block_number} (tx {recorded.tx_hash})" in first.output
    nonce = w3.eth.get_transaction_count(founder)

    again = poactl(running, "contracts", "deploy")
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"CreditRegistry already deployed at {recorded.address}")
    assert "nothing sent" in again.output
    assert read_registry(running.store()) == recorded
    assert w3.eth.get_transaction_count(founder) == nonce  # no new transaction

    b = client(running, "bank-b")  # the deployer has no power; governance says who writes
    assert b.governance() == GOVERNANCE_ADDRESS
    assert all(b.is_member(m.tx_account) for m in network.members.values())


def test_a_recorded_address_without_code_is_named_plainly(running: LocalConsortium) -> None:
    store = running.store()
    blob = store.read(CONTRACTS_BLOB)
    assert blob is not None
    recorded = read_registry(store)
    assert recorded is not None
    ghost = dataclasses.replace(recorded, address="0x" + "42" * 20)
    store.write(CONTRACTS_BLOB, ghost.as_json())
    try:
        result = poactl(running, "contracts", "deploy")
        assert result.exit_code == 1
        assert "has no code there: the chain was reset" in result.output
        assert "--replace" in result.output
        result = poactl(running, "credit", "get", "--bank", "bank-b", "--subject", "12345678")
        assert result.exit_code == 1 and "has no code there" in result.output
    finally:
        store.write(CONTRACTS_BLOB, blob.data)
    assert read_registry(store) == recorded


def test_bank_a_writes_through_its_node_bank_b_reads_from_its_own(
    running: LocalConsortium,
) -> None:
    a, b = client(running, "bank-a"), client(running, "bank-b")
    assert a.rpc_url == rpc(running, "bank-a-1")  # each bank's own node
    assert b.rpc_url == rpc(running, "bank-b-1")
    subject = a.subject(NATIONAL_IDS[0])
    sent = record("E2E-LOAN-1", current_balance=12_345)
    inclusion = a.report(subject, sent).wait(timeout=30)

    deadline = time.monotonic() + 10
    while True:
        found = b.get(subject)
        if found.tradelines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (tradeline,) = found.tradelines
    assert found.block_number - inclusion.block_number <= 2  # within 2 blocks
    assert tradeline.record == sent  # what Bank B reads equals what Bank A sent
    assert tradeline.furnisher == a.furnisher  # the bank: its admin account
    assert b.subject(NATIONAL_IDS[0]) == subject  # the same pseudonym at both banks


def test_a_bank_furnishes_a_metro2_file_that_another_bank_reads(
    running: LocalConsortium, tmp_path: Path
) -> None:
    """`poactl credit furnish` on the consortium: only the state dir, batches, and bank B
    reading from its own node what bank A furnished."""
    ids = [f"FU{i:07d}" for i in range(120)]
    items = [(nid, f"5500{i:012d}", record("x", current_balance=i)) for i, nid in enumerate(ids)]
    path = tmp_path / "month.m2"
    write_metro2(path, items)
    result = poactl(running, "credit", "furnish", "--bank", "bank-a", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert "bank-a furnished 120 records in 2 transactions" in result.output

    a, b = client(running, "bank-a"), client(running, "bank-b")
    wait_until_all_reach(running, "bank-a-1")
    (line,) = b.get(b.subject(ids[77]), min_block="head").tradelines
    assert (line.furnisher, line.record.current_balance, line.version) == (a.furnisher, 77, 1)


def test_credit_commands_need_only_the_state_dir(running: LocalConsortium, tmp_path: Path) -> None:
    doc = record_to_mapping(record("E2E-CARD", portfolio_type="R", account_type="18"))
    record_file = tmp_path / "record.yaml"
    record_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    subject = ["--subject", NATIONAL_IDS[1]]

    result = poactl(running, "credit", "report", "--bank", "bank-a", *subject, "--file",
                    str(record_file))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("bank-a reported E2E-CARD: tx 0x")
    wait_until_all_reach(running, "bank-a-1")  # bank-b reads from its own node

    result = poactl(running, "credit", "get", "--bank", "bank-b", *subject, "--format", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    (line,) = got["tradelines"]
    assert line["bank"] == "bank-a" and line["record"]["account_ref"] == "E2E-CARD"
    assert got["summary"]["accounts"] == 1

    result = poactl(running, "credit", "dispute", "--bank", "bank-b", *subject,
                    "--furnisher", "bank-a", "--account-ref", "E2E-CARD")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bank-b disputed bank-a/E2E-CARD (XB): tx 0x" in result.output
    wait_until_all_reach(running, "bank-b-1")
    result = poactl(running, "credit", "resolve", "--bank", "bank-a", *subject,
                    "--account-ref", "E2E-CARD", "--code", "XH")  # fmt: skip
    assert result.exit_code == 0, result.output
    wait_until_all_reach(running, "bank-a-1")

    result = poactl(running, "credit", "history", "--bank", "bank-b", *subject)
    assert result.exit_code == 0, result.output
    changes = re.findall(r"v(\d)  (\w+)\s+by (bank-\w)", result.output)
    assert changes == [("1", "reported", "bank-a"), ("2", "disputed", "bank-b"),
                       ("3", "resolved", "bank-a")]  # fmt: skip

    result = poactl(running, "credit", "get", "--bank", "bank-c", *subject)
    assert result.exit_code == 1
    assert "unknown bank 'bank-c'; the consortium's banks are bank-a, bank-b" in result.output


def test_each_bank_reads_from_its_own_read_index(running: LocalConsortium) -> None:
    """`up` started one index per bank; `status` shows how far each is behind its node;
    `credit get` reads from it; a rebuild fills it again from the chain."""
    a = client(running, "bank-a")
    recorded = read_registry(running.store())
    assert recorded is not None
    for bank in ("bank-a", "bank-b"):  # an earlier test recorded another address a moment
        reader = IndexReader(access(running, bank).index_url or "")

        def follows(r: IndexReader = reader) -> bool:
            return (r.status() or {}).get("registry") == recorded.address

        wait_for(follows, 60, f"{bank}'s index to follow the recorded registry")
    subject = a.subject(NATIONAL_IDS[2])
    written = a.report(subject, record("E2E-INDEX")).wait(timeout=30)

    result = poactl(running, "credit", "get", "--bank", "bank-b", "--subject", NATIONAL_IDS[2])
    assert result.exit_code == 0, result.output
    assert "(read from the bank's read index, " in result.output
    assert "E2E-INDEX" in result.output
    b = client(running, "bank-b")
    assert b.index is not None
    got = b.get(subject, min_block=written.block_number)
    assert got.read is not None and got.read.source == "index"

    result = poactl(running, "status", "--format", "json")
    indexes = {i["member"]: i for i in json.loads(result.output)["indexes"]}
    assert set(indexes) == {"bank-a", "bank-b"}
    for row in indexes.values():
        assert row["running"] and row["problems"] == [], row
        assert row["block"] >= written.block_number and row["behind"] is not None
    assert "read indexes:" in poactl(running, "status").output

    result = poactl(running, "index", "--rebuild", "--bank", "bank-b", "--timeout", "120")
    assert result.exit_code == 0, result.output
    assert "rebuilt the read index at http://127.0.0.1:" in result.output
    again = b.get(subject, min_block="head")
    assert again.read is not None and again.read.source == "index"
    assert again.tradelines == got.tradelines


def test_demo_prints_the_five_steps(running: LocalConsortium) -> None:
    result = poactl(running, "demo")
    assert result.exit_code == 0, result.output
    out = result.output
    starts = [line.split(" ", 1)[0] for line in out.splitlines() if line.startswith("[")]
    assert starts == ["[1]", "[2]", "[3]", "[4]", "[5]"]
    assert re.search(r"sent raw to bank-a-1 \(http://127\.0\.0\.1:\d+\)", out)
    included = re.search(
        r"included in block (\d+), sealed by bank-\w-\d \(0x[0-9a-fA-F]{40}\)", out
    )
    assert included, out
    read = re.search(r"from bank-b-1 \(http://[\d.:]+\) at block (\d+): (\d+) blocks after", out)
    assert read, out
    assert int(read[1]) - int(included[1]) == int(read[2]) <= 2
    assert "equal: all 14 fields match, furnisher bank-a" in out
    assert "summary of the subject: 1 accounts (1 open) from 1 banks" in out


def test_refusals_show_the_registry_reason(running: LocalConsortium, tmp_path: Path) -> None:
    a = client(running, "bank-a")
    subject = a.subject(NATIONAL_IDS[2])
    a.report(subject, record("E2E-OWN")).wait(timeout=30)
    record_file = tmp_path / "record.yaml"
    record_file.write_text(yaml.safe_dump(record_to_mapping(record("E2E-OWN"))))
    report = ["credit", "report", "--bank", "bank-b", "--subject", NATIONAL_IDS[2],
              "--file", str(record_file)]  # fmt: skip

    # Bank B writes Bank A's tradeline: refused before any gas is spent.
    result = poactl(running, *report, "--furnisher", "bank-a")
    assert result.exit_code == 1
    assert "error: the registry refused: NotFurnisher(caller=" in result.output
    assert "hint: a bank writes and resolves only its own tradelines" in result.output

    # Bank B's transaction account no longer writes for it (its admin took it out).
    bank_b = Account.from_key(access(running, "bank-b").account_key.value).address
    governance = bank_governance(running, "bank-b")
    governance.remove_writers([bank_b]).wait(timeout=30)
    try:
        result = poactl(running, *report)
        assert result.exit_code == 1
        assert f"error: the registry refused: NotMember(account={bank_b})" in result.output
        assert "hint: this account does not write for a member bank" in result.output
    finally:
        governance.add_writers([bank_b]).wait(timeout=30)


def test_no_national_id_appears_on_chain(running: LocalConsortium) -> None:
    """Last: every ID above went through the SDK or the CLI; none is on chain."""
    b = client(running, "bank-b")
    leaks, scanned = scan(
        http_web3(rpc(running, "bank-b-1")),
        NATIONAL_IDS,
        {b.subject(nid) for nid in NATIONAL_IDS},
    )
    assert not leaks, leaks
    assert scanned > 10
