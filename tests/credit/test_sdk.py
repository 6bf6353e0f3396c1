"""The SDK on real geth: validation before gas, many writes in flight, nonce resync,
confirmations, idempotent deployment, and errors that say what to do."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hexbytes import HexBytes

from orchestrator.boundaries import Secret
from orchestrator.credit import (
    CreditClient,
    CreditError,
    InvalidRecord,
    PendingTx,
    deploy_registry,
)
from orchestrator.credit.contract import registry_artifact, sender_for
from orchestrator.errors import ConfigError, ServiceUnavailable, WaitTimeout
from orchestrator.local.ports import port_is_free
from tests.credit.conftest import NATIONAL_IDS, Chain, record
from tests.helpers.ports import free_port_bases

pytestmark = [pytest.mark.geth, pytest.mark.slow]


def pending_nonce(client: CreditClient) -> int:
    return int(client.sender.w3.eth.get_transaction_count(client.address, "pending"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"account_status": "99"}, "account_status"),
        ({"current_balance": -5}, "current_balance"),
        ({"payment_history": "0" * 23}, "payment_history"),
        ({"account_type": "ZZ"}, "account_type"),
    ],
)
def test_bad_records_are_refused_before_anything_is_sent(
    bank_a: CreditClient, changes: dict[str, object], field: str
) -> None:
    before = pending_nonce(bank_a)
    with pytest.raises(InvalidRecord) as caught:
        bank_a.report(bank_a.subject(NATIONAL_IDS[0]), record(**changes))
    assert caught.value.field == field
    assert pending_nonce(bank_a) == before


def test_a_national_id_is_not_a_subject(bank_a: CreditClient) -> None:
    with pytest.raises(InvalidRecord) as caught:
        bank_a.report(NATIONAL_IDS[0], record())
    assert caught.value.field == "subject"
    assert "pseudonym(secret, id)" in str(caught.value)
    with pytest.raises(InvalidRecord, match="national_id"):
        bank_a.subject("12/34")
    with pytest.raises(InvalidRecord, match="code: 'XC'"):
        bank_a.dispute(bank_a.subject(NATIONAL_IDS[0]), bank_a.address, "LOAN-0001", "XC")
    with pytest.raises(InvalidRecord, match="code: 'XB'"):
        bank_a.resolve(bank_a.subject(NATIONAL_IDS[0]), "LOAN-0001", "XB")


def test_fifty_writes_in_flight_are_all_included(bank_a: CreditClient) -> None:
    subjects = [bank_a.subject(f"BULK{i:04d}") for i in range(5)]
    first = pending_nonce(bank_a)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        pending = list(
            pool.map(lambda i: bank_a.report(subjects[i % 5], record(f"BULK-{i:03d}")), range(50))
        )
    sent = time.monotonic() - started
    inclusions = [p.wait(timeout=60) for p in pending]
    assert sorted(i.nonce for i in inclusions) == list(range(first, first + 50))
    assert len({i.tx_hash for i in inclusions}) == 50
    blocks = {i.block_number for i in inclusions}
    assert len(blocks) <= 4, f"50 writes spread over {len(blocks)} blocks"
    assert sum(len(bank_a.get(s).tradelines) for s in subjects) == 50
    logging.getLogger(__name__).info("50 writes sent in %.2fs, in blocks %s", sent, blocks)


def test_the_allocator_resyncs_after_another_writer_used_the_nonce(
    chain: Chain, registry: str, bank_a: CreditClient, caplog: pytest.LogCaptureFixture
) -> None:
    subject = bank_a.subject(NATIONAL_IDS[1])
    mine = bank_a.report(subject, record("RESYNC-0")).wait()  # our counter: mine.nonce + 1
    other = chain.client("bank_a", registry)  # the same account with its own allocator
    theirs = other.report(subject, record("RESYNC-1")).wait()
    assert theirs.nonce == mine.nonce + 1

    caplog.set_level(logging.INFO, logger="orchestrator.geth.tx")
    again = bank_a.report(subject, record("RESYNC-2")).wait()
    assert again.nonce == mine.nonce + 2
    assert any("refused" in r.message and "resyncing" in r.message for r in caplog.records)
    assert bank_a.tradeline(subject, bank_a.furnisher, "RESYNC-2") is not None


def test_waiting_for_confirmations(bank_b: CreditClient) -> None:
    inclusion = bank_b.report(bank_b.subject(NATIONAL_IDS[2]), record("CONF")).wait(
        confirmations=3, timeout=30
    )
    assert bank_b.sender.w3.eth.block_number >= inclusion.block_number + 3


def test_waiting_for_a_transaction_that_never_comes_times_out(bank_b: CreditClient) -> None:
    ghost = PendingTx(bank_b.sender, "0x" + "ab" * 32, 0, {}, "a ghost transaction")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        ghost.wait(timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 5
    message = str(caught.value)
    assert "a ghost transaction was not included" in message
    assert "last state: sent, not yet in a block" in message
    assert "waited: 1." in message


def test_deploy_is_idempotent(chain: Chain, registry: str) -> None:
    admin = chain.keys["admin"]
    w3 = chain.w3()
    before = w3.eth.get_transaction_count(chain.addresses["admin"])
    assert deploy_registry(chain.rpc_url, admin, address=registry) == registry
    assert w3.eth.get_transaction_count(chain.addresses["admin"]) == before

    # No code at the recorded address (a reset chain): deploy again, elsewhere.
    fresh = deploy_registry(chain.rpc_url, admin, address=chain.addresses["bank_c"])
    assert fresh not in (registry, chain.addresses["bank_c"])
    assert HexBytes(w3.eth.get_code(fresh)) == HexBytes(registry_artifact().deployed_bytecode)

    # Some other contract there: refuse rather than point members at it.
    sender = sender_for(w3, admin, url=chain.rpc_url)
    stop_only = bytes.fromhex("6001600c60003960016000f3" + "00")  # runtime code: STOP
    inclusion = sender.send(to=None, data=stop_only, what="a foreign contract").wait()
    foreign = w3.eth.get_transaction_receipt(inclusion.tx_hash)["contractAddress"]
    with pytest.raises(CreditError, match="another contract's code") as caught:
        deploy_registry(chain.rpc_url, admin, address=foreign)
    assert caught.value.obj == foreign


def test_bad_key_material_is_a_config_error_that_does_not_show_it(
    chain: Chain, registry: str
) -> None:
    with pytest.raises(ConfigError, match="not a valid secp256k1 private key") as caught:
        CreditClient(
            chain.rpc_url,
            registry=registry,
            account_key=Secret("0xnot-a-key-but-secret-material"),
            pseudonym_secret=chain.pseudonym_secret,
        )
    assert "secret-material" not in str(caught.value)
    with pytest.raises(ConfigError, match="pseudonym secret"):
        CreditClient(
            chain.rpc_url,
            registry=registry,
            account_key=chain.keys["bank_a"],
            pseudonym_secret=Secret("short"),
        )
    with pytest.raises(ConfigError, match="registry"):
        CreditClient(
            chain.rpc_url,
            registry="0x1234",
            account_key=chain.keys["bank_a"],
            pseudonym_secret=chain.pseudonym_secret,
        )


def test_a_node_that_is_down_is_service_unavailable(chain: Chain, registry: str) -> None:
    (port,) = free_port_bases(1, 1)
    assert port_is_free(port)
    client = CreditClient(
        f"http://127.0.0.1:{port}",
        registry=registry,
        account_key=chain.keys["bank_a"],
        pseudonym_secret=chain.pseudonym_secret,
        timeout=1,
    )
    subject = client.subject(NATIONAL_IDS[0])
    with pytest.raises(ServiceUnavailable, match="the node did not answer") as caught:
        client.get(subject)
    assert caught.value.obj == f"http://127.0.0.1:{port}"
    with pytest.raises(ServiceUnavailable):
        client.report(subject, record())
