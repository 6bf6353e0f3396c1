"""The CreditRegistry on real geth, through the SDK: access control, own-tradeline-only
writes, versions and history, disputes, the summary, and every revert the contract has."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from genesis import GOVERNANCE_ADDRESS
from orchestrator.credit import ContractRevert, CreditClient, codes, registry_contract
from orchestrator.credit.contract import error_names
from orchestrator.credit.records import (
    RECORD_LAYOUT,
    TradelineState,
    commitment,
    record_to_contract,
    reported_fields,
    tradeline_key,
)
from tests.credit.conftest import NATIONAL_IDS, TODAY, Chain, record

pytestmark = [pytest.mark.geth, pytest.mark.slow]


def nonce(client: CreditClient) -> int:
    return int(client.sender.w3.eth.get_transaction_count(client.address, "pending"))


def test_a_member_reports_and_another_member_reads_the_same_record(
    bank_a: CreditClient, bank_b: CreditClient
) -> None:
    subject = bank_a.subject(NATIONAL_IDS[0])
    sent = record("LOAN-0001")
    inclusion = bank_a.report(subject, sent).wait()
    assert inclusion.gas_used > 0

    # Bank B derives the same subject from the same ID with the consortium secret.
    assert bank_b.subject("123 45 6789") == subject
    credit_file = bank_b.get(subject)
    assert credit_file.block_number >= inclusion.block_number
    (line,) = credit_file.tradelines
    assert line.record == sent
    assert line.furnisher == bank_a.furnisher  # the bank (its admin account), not its writer
    assert bank_a.furnisher != bank_a.address
    assert line.version == 1
    assert bank_b.tradeline(subject, bank_a.furnisher, "LOAN-0001") == line
    assert bank_b.tradeline(subject, bank_b.furnisher, "LOAN-0001") is None


def test_a_non_member_is_refused_before_gas_is_spent(bank_c: CreditClient) -> None:
    subject = bank_c.subject(NATIONAL_IDS[1])
    before = nonce(bank_c)
    with pytest.raises(ContractRevert) as caught:
        bank_c.report(subject, record())
    assert caught.value.error == "NotMember"
    assert caught.value.args_by_name == {"account": bank_c.address}
    assert f"the registry refused: NotMember(account={bank_c.address})" in str(caught.value)
    assert "`poactl members`" in str(caught.value)
    assert nonce(bank_c) == before  # nothing was sent


def test_a_revert_on_chain_is_explained_with_the_transaction(bank_c: CreditClient) -> None:
    """With a fixed gas limit nothing is estimated: the transaction is mined and reverts;
    waiting for it replays it and names the contract's error."""
    subject = bank_c.subject(NATIONAL_IDS[1])
    pending = bank_c.report(subject, record(), gas=400_000)
    with pytest.raises(ContractRevert) as caught:
        pending.wait()
    assert caught.value.error == "NotMember"
    assert caught.value.tx_hash == pending.tx_hash
    assert pending.tx_hash in str(caught.value)
    receipt = bank_c.sender.w3.eth.get_transaction_receipt(pending.tx_hash)
    assert receipt["status"] == 0


def test_a_bank_writes_only_its_own_tradelines(bank_a: CreditClient, bank_b: CreditClient) -> None:
    subject = bank_a.subject(NATIONAL_IDS[2])
    bank_a.report(subject, record("SHARED-REF", current_balance=100)).wait()
    with pytest.raises(ContractRevert) as caught:
        bank_b.report(subject, record("SHARED-REF", current_balance=0), furnisher=bank_a.furnisher)
    assert caught.value.error == "NotFurnisher"
    assert caught.value.args_by_name == {"caller": bank_b.address, "furnisher": bank_a.furnisher}

    # The same account reference from bank B is bank B's own tradeline, beside A's.
    bank_b.report(subject, record("SHARED-REF", current_balance=7)).wait()
    lines = {t.furnisher: t for t in bank_a.get(subject).tradelines}
    assert set(lines) == {bank_a.furnisher, bank_b.furnisher}
    assert lines[bank_a.furnisher].record.current_balance == 100
    assert lines[bank_a.furnisher].version == 1
    assert lines[bank_b.furnisher].record.current_balance == 7


def test_a_batch_writes_many_records_cheaply_and_a_repeat_writes_nothing(
    bank_a: CreditClient, bank_b: CreditClient
) -> None:
    subjects = [bank_a.subject(f"BATCH{i:04d}") for i in range(100)]
    entries = [(s, record(f"B-{i}")) for i, s in enumerate(subjects)]
    first = bank_a.furnish(entries).wait()
    w3 = bank_a.sender.w3
    assert len(w3.eth.get_transaction_receipt(first.tx_hash)["logs"]) == 100
    assert first.gas_used / 100 <= 30_000  # new tradelines, one storage word each

    again = bank_a.furnish(entries).wait()  # the committed records again: skipped
    assert w3.eth.get_transaction_receipt(again.tx_hash)["logs"] == []
    (line,) = bank_b.get(subjects[7]).tradelines
    assert (line.record, line.version, line.furnisher) == (entries[7][1], 1, bank_a.furnisher)

    updates = [(s, record(f"B-{i}", current_balance=14_000)) for i, s in enumerate(subjects)]
    monthly = bank_a.furnish(updates[:10] + entries[10:]).wait()  # 10 changed, 90 repeated
    assert len(w3.eth.get_transaction_receipt(monthly.tx_hash)["logs"]) == 10
    keys = [tradeline_key(s, bank_a.furnisher, f"B-{i}") for i, s in enumerate(subjects)]
    assert [s.version for s in bank_b.states(keys)] == [2] * 10 + [1] * 90
    assert (
        bank_b.tradeline(subjects[3], bank_a.furnisher, "B-3")
        == bank_b.get(subjects[3]).tradelines[0]
    )


def test_a_single_new_record_costs_at_most_60k_gas(bank_a: CreditClient) -> None:
    inclusion = bank_a.report(bank_a.subject("SINGLE-GAS-1"), record("ONE")).wait()
    assert inclusion.gas_used <= 60_000


def test_every_update_keeps_its_version_in_the_history(
    bank_a: CreditClient, bank_b: CreditClient
) -> None:
    subject = bank_a.subject(NATIONAL_IDS[3])
    day = TODAY - dt.timedelta(days=60)
    sent = [
        record("HIST-1", date_of_account_information=day),
        record("HIST-1", date_of_account_information=day, current_balance=14_000),
        record(
            "HIST-1",
            date_of_account_information=TODAY - dt.timedelta(days=1),
            current_balance=14_000,
            amount_past_due=700,
            account_status="71",
            payment_history="1000000000000BBBBBBBBBBB",
        ),
    ]
    blocks = [bank_a.report(subject, r).wait().block_number for r in sent]
    bank_a.report(subject, record("OTHER-ACCOUNT")).wait()

    history = bank_b.history(subject, furnisher=bank_a.furnisher, account_ref="HIST-1")
    assert [h.tradeline.version for h in history] == [1, 2, 3]
    assert [h.tradeline.record for h in history] == sent
    assert [h.block_number for h in history] == blocks
    assert {h.change for h in history} == {"reported"}
    assert {h.by for h in history} == {bank_a.furnisher}  # a bank, not its writer
    assert len(bank_b.history(subject)) == 4  # every tradeline of the subject
    assert bank_b.history(subject, furnisher=bank_b.furnisher) == []
    current = bank_b.tradeline(subject, bank_a.furnisher, "HIST-1")
    assert current is not None and current.version == 3 and current.record == sent[-1]


def test_disputes_are_flagged_by_any_member_and_resolved_by_the_furnisher(
    bank_a: CreditClient, bank_b: CreditClient
) -> None:
    subject = bank_a.subject(NATIONAL_IDS[4])
    bank_a.report(subject, record("DISPUTED")).wait()

    bank_b.dispute(subject, bank_a.furnisher, "DISPUTED", "XB").wait()
    line = bank_a.tradeline(subject, bank_a.furnisher, "DISPUTED")
    assert line is not None
    assert (line.record.compliance_condition, line.version, line.disputed) == ("XB", 2, True)
    assert bank_a.get(subject).summary.disputed == 1

    with pytest.raises(ContractRevert) as caught:
        bank_b.resolve(subject, "DISPUTED", "XH", furnisher=bank_a.furnisher)
    assert caught.value.error == "NotFurnisher"

    # A monthly report with a blank code keeps the open dispute (Metro 2 semantics), and
    # so does one with a code: only resolve() closes a dispute.
    bank_a.report(subject, record("DISPUTED", current_balance=14_500)).wait()
    line = bank_a.tradeline(subject, bank_a.furnisher, "DISPUTED")
    assert line is not None and line.record.compliance_condition == "XB" and line.version == 3
    closing = record("DISPUTED", current_balance=14_400, compliance_condition="XA")
    bank_a.report(subject, closing).wait()
    line = bank_a.tradeline(subject, bank_a.furnisher, "DISPUTED")
    assert line is not None and line.record.compliance_condition == "XB" and line.version == 4

    bank_a.resolve(subject, "DISPUTED", "XH").wait()
    line = bank_b.tradeline(subject, bank_a.furnisher, "DISPUTED")
    assert line is not None and line.record.compliance_condition == "XH" and not line.disputed

    # A later dispute can be opened again, and XR removes the code altogether.
    bank_b.dispute(subject, bank_a.furnisher, "DISPUTED", "XF").wait()
    bank_a.resolve(subject, "DISPUTED", "XR").wait()
    line = bank_b.tradeline(subject, bank_a.furnisher, "DISPUTED")
    assert line is not None and line.record.compliance_condition == "" and line.version == 7

    history = bank_a.history(subject, account_ref="DISPUTED")
    assert [(h.change, h.by, h.tradeline.record.compliance_condition) for h in history] == [
        ("reported", bank_a.furnisher, ""),
        ("disputed", bank_b.furnisher, "XB"),
        ("reported", bank_a.furnisher, "XB"),
        ("reported", bank_a.furnisher, "XB"),
        ("resolved", bank_a.furnisher, "XH"),
        ("disputed", bank_b.furnisher, "XF"),
        ("resolved", bank_a.furnisher, ""),
    ]


def test_writing_follows_membership_in_governance(
    chain: Chain, bank_a: CreditClient, bank_b: CreditClient, bank_c: CreditClient
) -> None:
    """No account manages the registry: the members' admins decide in Governance, and a
    member's writer accounts write while it is a member."""
    assert bank_a.governance() == GOVERNANCE_ADDRESS
    assert bank_a.is_member(bank_a.address) and bank_a.is_member(bank_b.address)
    assert not bank_c.is_member(bank_c.address)
    gov_a, gov_b, gov_c = (chain.governance(w) for w in ("gov_a", "gov_b", "gov_c"))
    subject = bank_c.subject(NATIONAL_IDS[0])
    with pytest.raises(ContractRevert, match="NotMember"):
        bank_c.report(subject, record("C-LOAN"))

    gov_c.propose_add(gov_c.account, "bank-c").wait()  # bank C files its request
    (request,) = gov_a.proposals(open_only=True)
    gov_a.vote(request.id, approve=True).wait()
    assert not bank_c.is_member(bank_c.address)  # bank C is not a member yet
    gov_b.vote(request.id, approve=True).wait()  # two of two: admitted
    gov_c.add_writers([bank_c.address]).wait()  # its own writer account
    assert bank_c.is_member(bank_c.address)
    bank_c.report(subject, record("C-LOAN")).wait()

    gov_a.propose_remove(gov_c.account).wait()
    (removal,) = gov_a.proposals(open_only=True)
    gov_b.vote(removal.id, approve=True).wait()  # two of three: voted out
    assert not bank_c.is_member(bank_c.address)
    with pytest.raises(ContractRevert, match="NotMember"):
        bank_c.report(subject, record("C-LOAN", current_balance=1))
    # What a removed member reported stays readable.
    assert bank_a.tradeline(subject, chain.addresses["gov_c"], "C-LOAN") is not None


def test_every_reported_log_proves_its_record_against_the_commitment_alone(
    chain: Chain, registry: str, bank_a: CreditClient, bank_b: CreditClient
) -> None:
    """keccak256(head ‖ body ‖ tail)[0:16] == state >> 128 for every Reported log, even
    when the code in force differs from the one sent (an open dispute keeps its code, XR
    clears it) and for batched records; the log decodes back to the record as sent."""
    subject = bank_a.subject("TAIL-0001")
    start = chain.w3().eth.block_number + 1
    bank_a.report(subject, record("TAIL-1")).wait()
    bank_b.dispute(subject, bank_a.furnisher, "TAIL-1", "XB").wait()
    sent_xa = record("TAIL-1", current_balance=1, compliance_condition="XA")
    bank_a.report(subject, sent_xa).wait()  # XB stays in force
    bank_a.resolve(subject, "TAIL-1", "XH").wait()
    bank_a.report(subject, record("TAIL-1", current_balance=2, compliance_condition="XR")).wait()
    bank_a.furnish([(subject, record(f"TAIL-B{i}", compliance_condition="XA")) for i in range(3)])
    bank_a.furnish([(subject, record("TAIL-B9"))]).wait()

    contract = registry_contract(chain.w3(), registry)
    query = {"address": registry, "fromBlock": start, "topics": [contract.events.Reported().topic]}
    logs = chain.w3().eth.get_logs(query)  # type: ignore[arg-type]
    assert len(logs) == 7
    tails = []
    for log in logs:
        ref, word, packed = reported_fields(bytes(log["data"]))
        assert commitment(packed) == word >> 128
        assert packed == bytes(log["data"][64:128]) + bytes(log["data"][128:130])
        assert bytes(log["data"][130:]) == bytes(30)  # bytes2, left-aligned in its word
        tails.append((TradelineState.of(word).compliance_condition, packed[64:].decode()))
        event = contract.events.Reported().process_log(log)
        assert event["args"]["tail"] == packed[64:66]
        assert ref == event["args"]["accountRef"]
    # (code in force, code as sent) for each report
    assert tails[:3] == [("", "\0\0"), ("XB", "XA"), ("", "XR")]
    assert tails[3:] == [("XA", "XA")] * 3 + [("", "\0\0")]
    (xa,) = [h for h in bank_b.history(subject, account_ref="TAIL-1") if h.tradeline.version == 3]
    assert xa.tradeline.record == replace(sent_xa, compliance_condition="XB")


def test_summary_across_banks(bank_a: CreditClient, bank_b: CreditClient) -> None:
    subject = bank_a.subject("SUMMARY-0001")
    pending = [
        bank_a.report(subject, record("A-CARD", portfolio_type="R", account_type="18")),
        bank_a.report(
            subject,
            record(
                "A-OLD",
                account_status="97",
                current_balance=500,
                amount_past_due=500,
                payment_history="LLL654321000BBBBBBBBBBBB",
            ),
        ),
        bank_b.report(subject, record("B-AUTO", account_status="80", amount_past_due=2_000)),
        bank_b.report(
            subject, record("B-PAID", account_status="13", current_balance=0, payment_rating="1")
        ),
    ]
    for p in pending:
        p.wait()
    credit_file = bank_b.get(subject)
    s = credit_file.summary
    assert len(credit_file.tradelines) == 4
    assert (s.accounts, s.open_accounts, s.furnishers) == (4, 3, 2)
    assert s.total_balance == 15_000 + 500 + 15_000
    assert s.total_past_due == 2_500
    assert s.worst_status == "97"
    assert s.delinquencies == 2
    assert s.late_months == 9
    assert s.disputed == 0


# -- every revert -----------------------------------------------------------------------


@dataclass
class Ctx:
    chain: Chain
    registry: str
    admin: CreditClient
    a: CreditClient
    b: CreditClient
    c: CreditClient
    subject: bytes

    def raw_report(self, **changes: Any) -> None:
        """report() straight to the contract (eth_call), past the client's own checks."""
        packed = bytearray(record_to_contract(record("RAW-REF")))
        subject = changes.pop("subject", self.subject)
        ref = changes.pop("accountRef", b"RAW-REF".ljust(32, b"\0"))
        for name, value in changes.items():
            offset, size = LAYOUT[name]
            raw = value.to_bytes(size, "big") if isinstance(value, int) else value
            packed[offset : offset + size] = raw.ljust(size, b"\0")
        self.raw("report", subject, self.a.furnisher, ref, bytes(packed))

    def raw(self, fn: str, *args: Any) -> None:
        """`fn(*args)` as bank A, straight to the contract (eth_call)."""
        contract = registry_contract(self.a.sender.w3, self.registry)
        data = contract.encode_abi(fn, args=list(args))
        self.a.sender.call({"from": self.a.address, "to": self.registry, "data": data})


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


LAYOUT = {_camel(name): (offset, size) for name, offset, size in RECORD_LAYOUT}


@pytest.fixture(scope="module")
def ctx(
    chain: Chain,
    registry: str,
    admin: CreditClient,
    bank_a: CreditClient,
    bank_b: CreditClient,
    bank_c: CreditClient,
) -> Ctx:
    subject = bank_a.subject("REVERTS-0001")
    bank_a.report(subject, record("LOAN-R")).wait()
    bank_a.report(subject, record("LOAN-D")).wait()
    bank_b.dispute(subject, bank_a.furnisher, "LOAN-D").wait()
    return Ctx(chain, registry, admin, bank_a, bank_b, bank_c, subject)


CASES: dict[str, tuple[Callable[[Ctx], object], dict[str, object]]] = {
    "NotMember": (lambda x: x.c.report(x.subject, record()), {}),
    "NotFurnisher": (lambda x: x.b.resolve(x.subject, "LOAN-D", furnisher=x.a.furnisher), {}),
    "UnknownTradeline": (
        lambda x: x.b.dispute(x.subject, x.a.furnisher, "NO-SUCH-REF"),
        {"accountRef": "0x" + b"NO-SUCH-REF".ljust(32, b"\0").hex()},
    ),
    "InvalidKey": (lambda x: x.raw_report(accountRef=bytes(32)), {"field": "'accountRef'"}),
    "InvalidLength": (lambda x: x.raw("furnish", b"\1" * 129), {"length": 129, "unit": 130}),
    "InvalidCode": (
        lambda x: x.raw_report(accountStatus=b"99"),
        {"field": "'accountStatus'", "code": "'99'"},
    ),
    "InvalidHistory": (
        lambda x: x.raw_report(paymentHistory=b"0000000Z" + b"0" * 16),
        {"position": 7, "code": "'Z'"},
    ),
    "InvalidDate": (
        lambda x: x.raw_report(dateOpened=20230230),
        {"field": "'dateOpened'", "date": 20230230},
    ),
    "InvalidAmount": (
        lambda x: x.raw_report(currentBalance=10, amountPastDue=11),
        {"field": "'amountPastDue'", "value": 11},
    ),
    "StaleReport": (
        lambda x: x.a.report(
            x.subject,
            record("LOAN-R", date_of_account_information=TODAY - dt.timedelta(days=30)),
        ),
        {},
    ),
    "AlreadyDisputed": (
        lambda x: x.b.dispute(x.subject, x.a.furnisher, "LOAN-D", "XF"),
        {"code": "'XB'"},
    ),
    "NoOpenDispute": (lambda x: x.a.resolve(x.subject, "LOAN-R"), {"code": "blank"}),
}


def test_the_cases_cover_every_custom_error() -> None:
    assert sorted(CASES) == error_names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_revert_is_decoded_plainly(ctx: Ctx, name: str) -> None:
    trigger, expected_args = CASES[name]
    with pytest.raises(ContractRevert) as caught:
        trigger(ctx)
    e = caught.value
    assert e.error == name
    assert {k: e.args_by_name[k] for k in expected_args} == expected_args
    assert str(e).startswith(f"the registry refused: {name}(")
    assert e.hint


STATUS_BYTES = [code.encode() for code in codes.STATUS]


def test_the_contract_checks_the_code_sets_itself(ctx: Ctx) -> None:
    """Past the client's checks, the contract accepts exactly the Metro 2 sets."""
    for status in STATUS_BYTES:
        ctx.raw_report(accountStatus=status)
    for char in "0123456BDEGHJKL":
        ctx.raw_report(paymentHistory=char.encode() * 24)
    for rating in [b"\0", *(c.encode() for c in codes.PAYMENT_RATINGS)]:
        ctx.raw_report(paymentRating=rating)
    for ccc in [b"\0\0", *(c.encode() for c in codes.COMPLIANCE_CONDITIONS)]:
        ctx.raw_report(complianceCondition=ccc)
    for portfolio in codes.PORTFOLIO_TYPES:
        ctx.raw_report(portfolioType=portfolio.encode())
    ctx.raw_report(dateOpened=20240229, dateOfAccountInformation=20240229)  # leap day
    ctx.raw_report(specialComment=b"B\0")

    refused: list[tuple[str, object]] = [
        ("accountStatus", b"00"),
        ("accountStatus", b"12"),
        ("accountStatus", b"D\0"),
        ("accountStatus", b"\0\0"),
        ("portfolioType", b"X"),
        ("accountType", b"a0"),
        ("paymentRating", b"7"),
        ("complianceCondition", b"XI"),
        ("complianceCondition", b"YB"),
        ("specialComment", b"\0B"),
        ("specialComment", b"b\0"),
    ]
    for field, value in refused:
        with pytest.raises(ContractRevert, match="InvalidCode") as caught:
            ctx.raw_report(**{field: value})
        assert caught.value.args_by_name["field"] == repr(field), value
    for field, date in [
        ("dateOpened", 20230229),
        ("dateOpened", 20241301),
        ("dateOpened", 18991231),
        ("dateOfAccountInformation", 20240431),
        ("dateOfAccountInformation", 0),
    ]:
        with pytest.raises(ContractRevert, match="InvalidDate"):
            ctx.raw_report(**{field: date})
    with pytest.raises(ContractRevert, match="InvalidKey"):
        ctx.raw_report(subject=bytes(32))
