"""The read index on real geth: it fills from the chain, answers what the node answers
(faster), says how far behind it is, rebuilds, asks for a token when told to, refuses a
log that does not match the state word logged with it, and the SDK falls back to the
node when the index is down or too far behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from eth_abi.abi import encode

from orchestrator.boundaries import Secret
from orchestrator.credit import CreditClient
from orchestrator.credit.contract import sender_for
from orchestrator.credit.records import commitment, record_to_contract
from orchestrator.geth.client import http_web3
from orchestrator.index.admin import rebuild
from orchestrator.index.checks import Kind, topic_of
from tests.credit.conftest import Chain, record
from tests.helpers.index import caught_up, index_url, running_index
from tests.helpers.ports import free_port_bases
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]


def reader(chain: Chain, registry: str, url: str | None, **kw: object) -> CreditClient:
    client = chain.client("bank_b", registry)
    return CreditClient(
        client.rpc_url,
        registry=registry,
        account_key=chain.keys["bank_b"],
        pseudonym_secret=chain.pseudonym_secret,
        index_url=url,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def written(bank_a: CreditClient, bank_b: CreditClient) -> dict[str, object]:
    """Reports, a batch, a dispute and its resolution: every kind of log."""
    subject = bank_a.subject("INDEX-0001")
    bank_a.report(subject, record("IX-1")).wait()
    bank_a.report(subject, record("IX-1", current_balance=14_000)).wait()
    bank_b.report(subject, record("IX-B")).wait()
    bank_b.dispute(subject, bank_a.furnisher, "IX-1", "XB").wait()
    bank_a.resolve(subject, "IX-1", "XH").wait()
    others = [(bank_a.subject(f"INDEX-B{i:03d}"), record(f"IXB-{i}")) for i in range(30)]
    last = bank_a.furnish([(subject, record("IX-2")), *others]).wait()
    return {"subject": subject, "block": last.block_number, "others": others}


def test_the_index_answers_what_the_node_answers(
    chain: Chain, registry: str, written: dict[str, object], tmp_path: Path
) -> None:
    subject = written["subject"]
    assert isinstance(subject, bytes) and isinstance(written["block"], int)
    with running_index([chain.rpc_url], registry, tmp_path) as index:
        wait_for(lambda: caught_up(index, written["block"]), 30, "the index to catch up")  # type: ignore[arg-type]
        by_index = reader(chain, registry, index_url(index))
        by_node = reader(chain, registry, None)

        from_index, from_node = by_index.get(subject), by_node.get(subject)
        assert from_index.read is not None and from_index.read.source == "index"
        assert from_node.read is not None and from_node.read.source == "node"
        assert from_index.read.behind <= 2
        assert from_index.tradelines == from_node.tradelines
        assert len(from_index.tradelines) == 3
        assert from_index.summary == from_node.summary

        history = by_index.history(subject)
        assert by_index.last_read is not None and by_index.last_read.source == "index"
        assert history == by_node.history(subject)
        assert [h.change for h in history].count("disputed") == 1
        furnisher = chain.client("bank_a", registry).furnisher
        assert by_index.history(subject, furnisher=furnisher, account_ref="IX-1") == (
            by_node.history(subject, furnisher=furnisher, account_ref="IX-1")
        )
        line = by_index.tradeline(subject, furnisher, "IX-1")
        assert line is not None and line.version == 4 and line.record.compliance_condition == "XH"
        assert by_index.get(b"\x01" * 32).tradelines == ()  # no such subject: an empty answer

        status = requests.get(index_url(index) + "v1/status", timeout=5).json()
        assert status["registry"] == registry and status["refused"] is False
        assert status["logs"] >= 5 + 31 and status["behind"] is not None
        metrics = requests.get(index_url(index) + "metrics", timeout=5).text
        assert "poactl_index_lag_blocks" in metrics and "poactl_index_logs" in metrics


def test_reads_fall_back_to_the_node_when_the_index_is_down_or_behind(
    chain: Chain, registry: str, bank_a: CreditClient, tmp_path: Path
) -> None:
    subject = bank_a.subject("INDEX-FALLBACK")
    (closed,) = free_port_bases(1, 1)
    nobody = reader(chain, registry, f"http://127.0.0.1:{closed}/")
    bank_a.report(subject, record("FB-1")).wait()
    found = nobody.get(subject)
    assert found.read is not None and found.read.source == "node"
    assert [t.record.account_ref for t in found.tradelines] == ["FB-1"]

    # An index that asks its node only every 30 s: caught up once, then behind.
    head = chain.w3().eth.block_number
    with running_index([chain.rpc_url], registry, tmp_path, poll_seconds=30) as index:
        wait_for(lambda: caught_up(index, head), 30, "the index to catch up")
        client = reader(chain, registry, index_url(index))
        stale = client.get(subject)
        assert stale.read is not None and stale.read.source == "index"
        later = bank_a.report(subject, record("FB-2")).wait()
        fresh = client.get(subject, min_block=later.block_number)  # the index lacks it
        assert fresh.read is not None and fresh.read.source == "node"
        assert fresh.read.block_number >= later.block_number
        assert {t.record.account_ref for t in fresh.tradelines} == {"FB-1", "FB-2"}
        strict = reader(chain, registry, index_url(index), index_max_lag=-1)
        assert strict.get(subject).read.source == "node"  # type: ignore[union-attr]


def test_a_read_for_a_block_the_index_is_about_to_hold_waits_for_it(
    chain: Chain, registry: str, bank_a: CreditClient, tmp_path: Path
) -> None:
    subject = bank_a.subject("INDEX-MINBLOCK")
    with running_index([chain.rpc_url], registry, tmp_path) as index:
        client = reader(chain, registry, index_url(index))
        for n in range(3):
            written = bank_a.report(subject, record(f"MB-{n}")).wait()
            got = client.get(subject, min_block=written.block_number)
            assert got.read is not None and got.read.source == "index"
            assert got.block_number >= written.block_number
            assert len(got.tradelines) == n + 1


def test_a_rebuild_fills_the_same_index_again(
    chain: Chain, registry: str, written: dict[str, object], tmp_path: Path
) -> None:
    with running_index([chain.rpc_url], registry, tmp_path) as index:
        wait_for(lambda: caught_up(index, written["block"]), 30, "the index to catch up")  # type: ignore[arg-type]
        before = index.store.read(written["subject"])  # type: ignore[arg-type]
        seen: list[dict[str, object]] = []
        done = rebuild(index_url(index), timeout=60, on_progress=seen.append)
        assert done.logs >= index.store.counts()["logs"] - 5  # the chain moved on meanwhile
        assert seen and seen[-1]["rebuilds"] == 1
        after = index.store.read(written["subject"])  # type: ignore[arg-type]
        assert after.logs == before.logs


def test_reads_need_an_application_token_when_the_index_has_tokens(
    chain: Chain, registry: str, written: dict[str, object], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "app.token").write_text("s3cret-token-of-the-app\n")
    with running_index([chain.rpc_url], registry, tmp_path / "ix", tokens_dir=tokens) as index:
        wait_for(lambda: caught_up(index, written["block"]), 30, "the index to catch up")  # type: ignore[arg-type]
        url = index_url(index) + "v1/logs?subject=0x" + bytes(32).hex()
        assert requests.get(url, timeout=5).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert requests.get(url, headers=bad, timeout=5).status_code == 401
        good = {"Authorization": "Bearer s3cret-token-of-the-app"}
        assert requests.get(url, headers=good, timeout=5).status_code == 200
        assert requests.get(index_url(index) + "v1/status", timeout=5).status_code == 200
        client = reader(
            chain, registry, index_url(index), rpc_token=Secret("s3cret-token-of-the-app")
        )
        got = client.get(written["subject"])  # type: ignore[arg-type]
        assert got.read is not None and got.read.source == "index"
        # The token goes to the node too (geth takes it, with its JSON content type).
        token = Secret("s3cret-token-of-the-app")
        node = reader(chain, registry, index_url(index), rpc_token=token, index_max_lag=-1)
        assert node.get(written["subject"]).read.source == "node"  # type: ignore[arg-type, union-attr]


# -- refusal: a contract that emits whatever it is given, at the address the index follows


# Runtime code: copy the calldata to memory, LOG3(topics = its first three words, data =
# the rest). Hand-assembled; creation code returns it.
EMITTER_RUNTIME = bytes.fromhex(
    "36" "6000" "6000" "37"  # CALLDATACOPY(0, 0, CALLDATASIZE)
    "6040" "51" "6020" "51" "6000" "51"  # topic2, topic1, topic0
    "6060" "36" "03" "6060" "a3" "00"  # LOG3(0x60, CALLDATASIZE - 0x60, ...); STOP
)  # fmt: skip
EMITTER_CREATION = (
    bytes.fromhex(f"60{len(EMITTER_RUNTIME):02x}80600b6000396000f3") + EMITTER_RUNTIME
)


def _reported(subject: bytes, furnisher: bytes, version: int, packed: bytes, *, lie: bool) -> bytes:
    committed = commitment(packed) ^ (1 if lie else 0)
    date = int.from_bytes(packed[60:64], "big")
    state = committed << 128 | 1_700_000_000 << 80 | date << 32 | version
    ref = b"FORGED".ljust(32, b"\0")
    data = encode(
        ["bytes32", "uint256", "bytes32", "bytes32", "bytes2"],
        [ref, state, packed[:32], packed[32:64], packed[64:]],
    )
    return topic_of(Kind.REPORTED) + subject + furnisher.rjust(32, b"\0") + data


def test_a_log_that_does_not_match_its_state_word_is_refused(chain: Chain, tmp_path: Path) -> None:
    w3 = http_web3(chain.rpc_url)
    sender = sender_for(w3, chain.keys["bank_c"], url=chain.rpc_url)
    deployed = sender.send(to=None, data=EMITTER_CREATION, gas=200_000).wait()
    receipt = w3.eth.get_transaction_receipt(deployed.tx_hash)  # type: ignore[arg-type]
    emitter = receipt["contractAddress"]
    subject, furnisher = b"\x11" * 32, b"\x22" * 20
    packed = record_to_contract(record("FORGED"))

    def emit(version: int, *, lie: bool = False) -> int:
        data = _reported(subject, furnisher, version, packed, lie=lie)
        return sender.send(to=emitter, data=data, gas=100_000).wait().block_number

    start = deployed.block_number
    good = emit(1)  # a log the index accepts: the checks are not simply refusing
    with running_index([chain.rpc_url], emitter, tmp_path, from_block=start) as index:
        wait_for(lambda: caught_up(index, good), 30, "the index to take the good log")
        assert len(index.store.read(subject).logs) == 1

        skipped = emit(3)  # version 3 after version 1
        wait_for(lambda: index.refused, 30, "the index to refuse the version gap")
        assert f"block {skipped} log 0" in str(index.problem)
        assert "version 3 where 2 was due" in str(index.problem)
        tip = index.store.tip()
        assert tip is not None and tip.number == skipped - 1  # nothing of its block kept
        status = requests.get(index_url(index) + "v1/status", timeout=5).json()
        assert status["refused"] is True and "version 3" in status["problem"]
        metrics = requests.get(index_url(index) + "metrics", timeout=5).text
        assert "poactl_index_refused 1.0" in metrics

    with running_index(
        [chain.rpc_url], emitter, tmp_path / "again", from_block=skipped + 1
    ) as index:
        lied = emit(1, lie=True)  # a first version whose record is not the committed one
        wait_for(lambda: index.refused, 30, "the index to refuse the forged record")
        assert "does not match the commitment" in str(index.problem)
        tip = index.store.tip()
        assert tip is not None and tip.number == lied - 1
