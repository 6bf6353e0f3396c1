"""The Governance contract's rules on a real geth 1.13.15: the genesis instance against
the constructor, majorities of members, ballots, expiry, caps, the floor, removal.

Each rule test deploys its own instance (`fresh`); accounts 0..9 are funded admins, and
founder i is named bank-<letter i>.
"""

from __future__ import annotations

import pytest

from genesis import GOVERNANCE_ADDRESS
from genesis.governance import governance_storage
from orchestrator.errors import ContractRevert
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_request
from orchestrator.governance.client import governance_artifact
from tests.governance.conftest import Fresh, GovChain, random_address
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.geth


def refused(rule: str, call: object) -> ContractRevert:
    """Run `call` (a zero-argument callable) and return the ContractRevert naming `rule`."""
    with pytest.raises(ContractRevert) as caught:
        call()  # type: ignore[operator]
    assert caught.value.error == rule, str(caught.value)
    assert "the governance refused: " + rule in str(caught.value)
    assert caught.value.hint
    return caught.value


def done(pending: object) -> None:
    pending.wait(timeout=30)  # type: ignore[attr-defined]


def storage(chain: GovChain, address: str, block_hash: str) -> dict[str, str]:
    """Every non-zero storage slot of `address` at the start of block `block_hash`."""
    slots: dict[str, str] = {}
    start = "0x" + "00" * 32
    while start is not None:
        page = ipc_request(
            chain.node.ipc,
            "debug_storageRangeAt",
            [block_hash, 0, address, start, 256],
        )
        slots.update({k: v["value"] for k, v in page["storage"].items()})
        start = page["nextKey"]
    return slots


# -- the genesis instance ---------------------------------------------------------------


def test_the_genesis_instance_holds_exactly_what_the_constructor_writes(
    gov_chain: GovChain,
) -> None:
    from tests.governance.conftest import deploy

    address = deploy(gov_chain, gov_chain.genesis_founders, gov_chain.genesis_rules)
    w3 = http_web3(gov_chain.node.rpc_url)
    artifact = governance_artifact()
    assert w3.eth.get_code(GOVERNANCE_ADDRESS).hex() == artifact.deployed_bytecode[2:]
    assert w3.eth.get_code(address) == w3.eth.get_code(GOVERNANCE_ADDRESS)
    after = w3.eth.block_number + 1
    wait_for(lambda: w3.eth.block_number >= after, 10, "the next block")
    block = w3.eth.get_block(after)["hash"].to_0x_hex()
    genesis_slots = storage(gov_chain, GOVERNANCE_ADDRESS, block)
    constructed = storage(gov_chain, address, block)
    assert genesis_slots == constructed
    expected = governance_storage(
        artifact.storage_layout, gov_chain.genesis_founders, gov_chain.genesis_rules
    )
    assert len(genesis_slots) == len(expected) > 10
    for a, b in ((gov_chain.client(), gov_chain.client(address=address)),):
        assert [m.admin for m in a.members()] == [m.admin for m in b.members()]
        assert a.members()[0].validators == b.members()[0].validators
        assert a.validators() == b.validators()
        assert a.rules() == b.rules()


def test_the_genesis_instance_lists_the_founders_and_the_rules(gov_chain: GovChain) -> None:
    gov = gov_chain.client()
    founders = gov_chain.genesis_founders
    members = gov.members()
    assert [(m.admin, m.name, m.since) for m in members] == [(f.admin, f.name, 0) for f in founders]
    assert [list(m.validators) for m in members] == [list(f.validators) for f in founders]
    assert [list(m.writers) for m in members] == [list(f.writers) for f in founders]
    assert gov.validators() == [v for f in founders for v in f.validators]
    assert gov.rules() == {
        "proposal_lifetime_blocks": 6, "validator_cap": 2, "validator_floor": 2,
    }  # fmt: skip
    assert gov.threshold() == 2


# -- majorities -------------------------------------------------------------------------


def test_with_two_members_both_must_approve(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1])
    a, b = gov_chain.client(0, address), gov_chain.client(1, address)
    candidate = gov_chain.addresses[2]
    done(a.propose_add(candidate, "bank-c"))
    (p,) = a.proposals()
    assert (p.kind, p.status, p.approvals, p.name) == ("add", "open", (a.account,), "bank-c")
    assert not a.is_member(candidate)
    done(b.vote(p.id, approve=True))
    assert a.proposal(p.id).status == "approved"
    assert [m.name for m in a.members()] == ["bank-a", "bank-b", "bank-c"]
    assert a.member(candidate).since > 0 and a.threshold() == 2


def test_with_three_members_two_decide(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1, 2], validators=1)
    a, b = gov_chain.client(0, address), gov_chain.client(1, address)
    done(a.propose_add(gov_chain.addresses[3], "bank-d"))
    done(b.vote(0, approve=True))
    assert a.proposal(0).status == "approved" and len(a.members()) == 4
    assert a.threshold() == 3  # four members: three decide


def test_a_majority_of_rejections_decides_too(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1, 2], validators=1)
    a, b, c = (gov_chain.client(i, address) for i in (0, 1, 2))
    done(a.propose_add(gov_chain.addresses[3], "bank-d"))
    done(b.vote(0, approve=False))
    assert a.proposal(0).status == "open"  # 1 for, 1 against, 1 to go
    done(c.vote(0, approve=False))
    p = a.proposal(0)
    assert (p.status, p.rejections) == ("rejected", (b.account, c.account))
    assert not a.is_member(gov_chain.addresses[3])
    refused("ProposalDecided", lambda: a.withdraw_vote(0))


def test_one_ballot_per_admin_and_only_members_vote(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1])
    a = gov_chain.client(0, address)
    outsider = gov_chain.client(5, address)
    done(a.propose_add(gov_chain.addresses[2], "bank-c"))
    refused("AlreadyVoted", lambda: a.vote(0, approve=True))
    refused("NotAMember", lambda: outsider.vote(0, approve=True))
    refused("NotAMember", lambda: outsider.propose_add(gov_chain.addresses[6], "bank-g"))
    refused("ProposalPending", lambda: a.propose_add(gov_chain.addresses[2], "bank-c"))
    refused("NameTaken", lambda: a.propose_add(gov_chain.addresses[6], "bank-b"))
    refused("AlreadyAMember", lambda: a.propose_add(gov_chain.addresses[1], "bank-x"))
    refused("UnknownProposal", lambda: a.vote(7, approve=True))
    assert a.proposal(0).approvals == (a.account,)  # nothing above changed anything


def test_a_candidate_files_its_own_request_without_a_ballot(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    address, _ = fresh([0, 1])
    candidate = gov_chain.client(4, address)
    done(candidate.propose_add(candidate.account, "bank-e"))
    p = candidate.proposal(0)
    assert (p.proposer, p.approvals, p.status) == (candidate.account, (), "open")
    refused("NotAMember", lambda: candidate.vote(0, approve=True))
    done(gov_chain.client(0, address).vote(0, approve=True))
    done(gov_chain.client(1, address).vote(0, approve=True))
    assert candidate.is_member(candidate.account)


def test_a_ballot_can_be_withdrawn_before_the_decision(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1, 2], validators=1)
    a, b, c = (gov_chain.client(i, address) for i in (0, 1, 2))
    done(a.propose_add(gov_chain.addresses[3], "bank-d"))
    done(a.withdraw_vote(0))
    assert a.proposal(0).approvals == ()
    refused("NoBallot", lambda: a.withdraw_vote(0))
    done(b.vote(0, approve=True))
    assert a.proposal(0).status == "open"
    done(c.vote(0, approve=True))
    assert a.proposal(0).status == "approved"


def test_a_proposal_expires_after_its_lifetime(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1], lifetime=3)
    a, b = gov_chain.client(0, address), gov_chain.client(1, address)
    done(a.propose_add(gov_chain.addresses[2], "bank-c"))
    expires = a.proposal(0).expires
    w3 = http_web3(gov_chain.node.rpc_url)
    wait_for(lambda: w3.eth.block_number > expires, 20, "a block after the proposal's last")
    assert a.proposal(0).status == "expired"
    refused("ProposalExpired", lambda: b.vote(0, approve=True))
    done(a.propose_add(gov_chain.addresses[2], "bank-c"))  # a new proposal may follow
    done(b.vote(1, approve=True))
    assert a.is_member(gov_chain.addresses[2])


# -- validators, writers, removal --------------------------------------------------------


def test_a_member_manages_its_own_validators_within_the_cap_and_floor(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    address, founders = fresh([0, 1], validators=2)
    a, b = gov_chain.client(0, address), gov_chain.client(1, address)
    refused("OverCap", lambda: a.add_validators([random_address()]))
    refused("NotYours", lambda: a.remove_validators([founders[1].validators[0]]))
    done(a.remove_validators([founders[0].validators[0]]))
    refused("AlreadyRegistered", lambda: a.add_validators([founders[1].validators[0]]))
    new = random_address()
    done(a.add_validators([new]))
    assert a.member(a.account).validators == (founders[0].validators[1], new)
    done(b.remove_validators(list(founders[1].validators)))  # two remain: the floor
    refused("BelowFloor", lambda: a.remove_validators([new]))
    assert a.validators() == [founders[0].validators[1], new]
    writer = random_address()
    done(b.add_writers([writer]))
    refused("NotYours", lambda: a.remove_writers([writer]))
    done(b.remove_writers([writer]))
    assert writer not in b.member(b.account).writers


def test_voting_a_member_out_removes_its_validators_and_writers(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    address, founders = fresh([0, 1, 2], validators=1)
    a, b, c = (gov_chain.client(i, address) for i in (0, 1, 2))
    done(a.propose_remove(c.account))
    done(b.vote(0, approve=True))
    assert a.proposal(0).kind == "remove" and a.proposal(0).status == "approved"
    assert [m.admin for m in a.members()] == [a.account, b.account]
    assert a.validators() == [founders[0].validators[0], founders[1].validators[0]]
    assert not a.is_member(c.account)
    refused("NotAMember", lambda: c.add_writers([random_address()]))
    # Two members, two validators: removing either would go below the floor, so the
    # proposal itself is refused at once, not its last ballot later.
    refused("BelowFloor", lambda: a.propose_remove(b.account))
    assert a.proposal_count() == 1 and a.is_member(b.account)


def test_a_removal_that_fell_below_the_floor_meanwhile_is_refused_at_the_decision(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    """Proposed while three validators remained; by the deciding ballot a member had
    removed one of its own: the proposal is decided Refused, nobody is removed, and the
    deciding ballot itself goes through (it does not revert and leave the proposal open)."""
    address, founders = fresh([0, 1, 2], validators=1, floor=2)
    a, b, c = (gov_chain.client(i, address) for i in (0, 1, 2))
    done(a.propose_remove(c.account))  # 3 - 1 = 2 left: within the floor
    done(b.remove_validators([founders[1].validators[0]]))
    done(b.add_validators([random_address()]))  # 3 again
    done(a.remove_validators([founders[0].validators[0]]))  # 2 now: c's removal would leave 1
    done(b.vote(0, approve=True))
    p = a.proposal(0)
    assert p.status == "refused" and p.approvals == (a.account, b.account)
    assert [m.name for m in a.members()] == ["bank-a", "bank-b", "bank-c"]
    assert len(a.validators()) == 2
    refused("ProposalDecided", lambda: c.vote(0, approve=False))
    refused("BelowFloor", lambda: a.propose_remove(c.account))  # and now, at once


def test_a_removed_members_ballots_stop_counting(gov_chain: GovChain, fresh: Fresh) -> None:
    address, _ = fresh([0, 1, 2, 3], validators=1)
    a, b, c, d = (gov_chain.client(i, address) for i in range(4))
    done(d.propose_add(gov_chain.addresses[4], "bank-e"))  # d approves e
    done(a.propose_remove(d.account))
    done(b.vote(1, approve=True))
    done(c.vote(1, approve=True))  # 3 of 4: d is out
    p = a.proposal(0)
    assert p.approvals == () and p.status == "open"


def test_a_change_of_membership_is_applied_to_open_proposals_by_settle(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    address, _ = fresh([0, 1, 2, 3], validators=1)
    a, b, c = (gov_chain.client(i, address) for i in range(3))
    d = gov_chain.client(3, address)
    done(a.propose_add(gov_chain.addresses[4], "bank-e"))  # proposal 0
    done(b.vote(0, approve=True))
    assert a.proposal(0).status == "open"  # 2 of 4: three decide
    done(a.propose_remove(d.account))  # proposal 1
    done(b.vote(1, approve=True))
    done(c.vote(1, approve=True))  # 3 of 4: d is out, three members now
    assert a.threshold() == 2 and a.proposal(0).status == "open"
    done(gov_chain.client(9, address).settle(0))  # anyone may apply the rule
    assert a.proposal(0).status == "approved" and a.is_member(gov_chain.addresses[4])


def test_one_name_is_admitted_once_even_when_proposed_twice(
    gov_chain: GovChain, fresh: Fresh
) -> None:
    address, _ = fresh([0, 1])
    a, b = gov_chain.client(0, address), gov_chain.client(1, address)
    done(a.propose_add(gov_chain.addresses[2], "bank-x"))
    done(a.propose_add(gov_chain.addresses[3], "bank-x"))  # no member has the name yet
    done(b.vote(0, approve=True))
    refused("NameTaken", lambda: b.vote(1, approve=True))
    assert [m.name for m in a.members()] == ["bank-a", "bank-b", "bank-x"]
