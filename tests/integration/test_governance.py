"""Governance driving Clique on a running consortium of real geth 1.13.15 nodes.

One consortium for the module: bank-a with two validators, bank-b and bank-c with one
each (four signers), no spares. Tests run in file order: bank-a takes one of its own
validators out, then bank-a and bank-b vote bank-c out, then the floor refuses more.
Each change is made on the Governance contract; the sealing agents' votes carry it into
Clique's signers, and the chain keeps sealing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import main
from orchestrator.geth.ipc import ipc_request
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import bank_governance
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import ports_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

VOTE_TIMEOUT = 90  # three of four signers must each seal a block with their vote


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    text = (
        f"{ports_yaml(4)}\n"
        "members:\n"
        "  bank-a: {validators: 2, spares: 0}\n"
        "  bank-b: {validators: 1, spares: 0}\n"
        "  bank-c: {validators: 1, spares: 0}\n"
    )
    with running_consortium(geth, text) as local:
        yield local


def poactl(local: LocalConsortium, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--state-dir", str(local.layout.root)])


def members(local: LocalConsortium) -> dict[str, Any]:
    result = poactl(local, "members", "--format", "json")
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.output)
    return answer


def clique_signers(local: LocalConsortium, node: str = "bank-a-1") -> list[str]:
    return [s.lower() for s in ipc_request(local.layout.node(node).ipc, "clique_getSigners")]


def sealers_of_recent_blocks(local: LocalConsortium, count: int) -> set[str]:
    ipc = local.layout.node("bank-a-1").ipc
    head = int(ipc_request(ipc, "eth_blockNumber"), 16)
    return {
        str(ipc_request(ipc, "clique_getSigner", [hex(n)])).lower()
        for n in range(head - count + 1, head + 1)
    }


def wait_for_blocks(local: LocalConsortium, count: int) -> None:
    ipc = local.layout.node("bank-a-1").ipc
    start = int(ipc_request(ipc, "eth_blockNumber"), 16)
    wait_for(
        lambda: int(ipc_request(ipc, "eth_blockNumber"), 16) >= start + count,
        count * 4 + 10,
        f"{count} more blocks",
    )


def wait_until_bank_sees(local: LocalConsortium, bank: str, name: str) -> None:
    """Block until `bank`'s own node shows an open proposal about `name`: a ballot reads the
    proposal through the voter's node, which can be a block behind the proposer's."""
    gov = bank_governance(local, bank)
    wait_for(
        lambda: any(p.name == name for p in gov.proposals(open_only=True)), 20,
        f"{bank}'s node to show the proposal about {name}",
    )  # fmt: skip


def status_validators(local: LocalConsortium) -> dict[str, Any] | None:
    result = poactl(local, "status", "--format", "json")
    validators: dict[str, Any] | None = json.loads(result.output)["validators"]
    return validators


def test_the_founders_are_members_and_every_validator_seals(running: LocalConsortium) -> None:
    report = members(running)
    assert [m["name"] for m in report["members"]] == ["bank-a", "bank-b", "bank-c"]
    assert report["threshold"] == 2 and report["open_proposals"] == []
    network = running.network()
    assert network is not None
    for m in report["members"]:
        info = network.members[m["name"]]
        assert m["admin"] == info.admin and m["writers"] == [info.tx_account]
        assert [v["address"] for v in m["validators"]] == list(info.signers)
        assert all(v["sealing"] for v in m["validators"]), m
    wait_for(lambda: (status_validators(running) or {}).get("match"), 20, "agents to reconcile")
    table = poactl(running, "members").output
    assert "bank-c  admin" in table and "NOT sealing" not in table


def test_a_member_takes_out_its_own_validator_and_clique_follows(
    running: LocalConsortium,
) -> None:
    network = running.network()
    assert network is not None
    leaving = network.members["bank-a"].signers[1]
    bank_governance(running, "bank-a").remove_validators([leaving]).wait(timeout=30)
    decided = [v["address"] for m in members(running)["members"] for v in m["validators"]]
    assert leaving not in decided and len(decided) == 3
    wait_for(
        lambda: leaving.lower() not in clique_signers(running), VOTE_TIMEOUT,
        "Clique to drop bank-a's second signer",
    )  # fmt: skip
    wait_for_blocks(running, 6)
    assert leaving.lower() not in sealers_of_recent_blocks(running, 5)
    wait_for(
        lambda: (status_validators(running) or {}).get("match")
        and not status_validators(running)["votes"],  # type: ignore[index]
        20, "the votes to be discarded",
    )  # fmt: skip


def test_two_of_three_vote_a_member_out_and_its_signer_stops(running: LocalConsortium) -> None:
    network = running.network()
    assert network is not None
    proposed = poactl(running, "members", "vote", "bank-c", "--remove", "--as", "bank-a")
    assert proposed.exit_code == 0, proposed.output
    assert "remove bank-c" in proposed.output and ": open, for 1" in proposed.output
    wait_until_bank_sees(running, "bank-b", "bank-c")
    approved = poactl(running, "members", "vote", "bank-c", "--approve", "--as", "bank-b")
    assert approved.exit_code == 0, approved.output
    assert ": approved; 2 members now" in approved.output, approved.output
    assert [m["name"] for m in members(running)["members"]] == ["bank-a", "bank-b"]
    gone = network.members["bank-c"].signers[0].lower()
    wait_for(lambda: gone not in clique_signers(running), VOTE_TIMEOUT, "Clique to drop bank-c")
    wait_for_blocks(running, 6)
    assert gone not in sealers_of_recent_blocks(running, 5)
    ipc = running.layout.node("bank-a-1").ipc
    head = int(ipc_request(ipc, "eth_blockNumber"), 16)
    times = [
        int(ipc_request(ipc, "eth_getBlockByNumber", [hex(n), False])["timestamp"], 16)
        for n in range(head - 4, head + 1)
    ]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 3  # the period holds


def test_the_floor_and_the_ballots_refuse_and_change_nothing(running: LocalConsortium) -> None:
    """Two members, one validator each, a floor of two: removing either is refused when
    it is proposed (not at its last ballot, as it was), and nothing is left open."""
    below = poactl(running, "members", "vote", "bank-b", "--remove", "--as", "bank-a")
    assert below.exit_code != 0
    assert "BelowFloor(remaining=1, floor=2)" in below.output and "hint:" in below.output
    assert "add validators first" in below.output
    outsider = poactl(running, "members", "vote", "bank-a", "--remove", "--as", "bank-c")
    assert outsider.exit_code != 0 and "NotAMember(" in outsider.output
    report = members(running)
    assert [m["name"] for m in report["members"]] == ["bank-a", "bank-b"]
    assert report["open_proposals"] == []
