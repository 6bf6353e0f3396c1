"""Governance's decision turned into Clique votes (`orchestrator.agent.votes.reconcile`)
on a real geth 1.13.15 that follows a chain whose genesis holds the Governance contract.

The node does not seal, so the votes it holds stay in flight as long as the test
wants: what `reconcile` proposes and discards shows in `clique_proposals`, and a geth
restart (which forgets them) is followed by the same votes again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account

from genesis import GOVERNANCE_ADDRESS, CliqueSpec, Founder, Rules, governance_contract
from orchestrator.agent.votes import decided_validators, reconcile
from orchestrator.geth.ipc import ipc_probe, ipc_request
from orchestrator.governance.client import governance_artifact
from orchestrator.runtime.process import LocalProcess, ProcessRuntime
from tests.governance.conftest import random_address
from tests.helpers.geth import DevNode, dev_node
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.geth

SIGNER = Account.create().address  # Clique's one signer in the genesis
DECIDED_EXTRA = random_address()  # decided by governance, not yet a signer


def spec(*, governance: bool) -> CliqueSpec:
    artifact = governance_artifact()
    founder = Founder(
        admin=random_address(), name="bank-a", validators=[SIGNER, DECIDED_EXTRA], writers=[]
    )
    contracts = {
        GOVERNANCE_ADDRESS: governance_contract(
            artifact.deployed_bytecode, artifact.storage_layout, [founder], Rules()
        )
    }
    return CliqueSpec(chain_id=7551, signers=[SIGNER], contracts=contracts if governance else {})


Start = Callable[[], LocalProcess]


@pytest.fixture
def follower(geth: str, short_dir: Path) -> Iterator[tuple[DevNode, Start]]:
    node = dev_node(geth, short_dir / "n", spec(governance=True), max_peers=0)
    started: list[LocalProcess] = []

    def start() -> LocalProcess:
        process = ProcessRuntime().start(node.argv, name="votes", log_file=node.log_file)
        started.append(process)
        wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber") is not None, 30, "geth's IPC")
        return process

    yield node, start
    for process in started:
        process.stop()


def proposals(node: DevNode) -> dict[str, bool]:
    return {k.lower(): v for k, v in ipc_request(node.ipc, "clique_proposals").items()}


def test_the_votes_follow_the_decision_and_are_cast_again_after_a_restart(
    follower: tuple[DevNode, Start],
) -> None:
    node, start = follower
    process = start()
    assert decided_validators(node.ipc) == (SIGNER, DECIDED_EXTRA)
    stale = random_address()
    ipc_request(node.ipc, "clique_propose", [stale, True])  # e.g. left from an old decision
    votes = reconcile(node.ipc)
    assert votes.signers == (SIGNER,)
    assert votes.voting == {DECIDED_EXTRA: True} and not votes.settled
    assert proposals(node) == {DECIDED_EXTRA.lower(): True}  # the stale one discarded
    assert reconcile(node.ipc).voting == votes.voting  # idempotent
    process.stop()
    start()
    assert proposals(node) == {}  # geth keeps proposals in memory only
    reconcile(node.ipc)
    assert proposals(node) == {DECIDED_EXTRA.lower(): True}


def test_a_chain_without_governance_gets_no_votes(geth: str, short_dir: Path) -> None:
    node = dev_node(geth, short_dir / "n", spec(governance=False), max_peers=0)
    process = ProcessRuntime().start(node.argv, name="votes", log_file=node.log_file)
    try:
        wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber") is not None, 30, "geth's IPC")
        votes = reconcile(node.ipc)
        assert (votes.decided, votes.voting, votes.settled) == (None, {}, True)
        assert proposals(node) == {}
    finally:
        process.stop()
