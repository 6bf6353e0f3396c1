"""Agents racing for identities, failover to a spare, and leader failover, on the local
store and the banks' local vaults (the embedded default), with real geth.

One consortium for the module: bank-a has two identities and three agents (one spare),
bank-b one identity and one agent. Tests run in file order.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from orchestrator.local.consortium import LocalConsortium
from tests.helpers.chain import (
    agent,
    assert_no_signer_sealed_twice_at_one_height,
    chain_of,
    head,
    keystore_files,
    kill_agent_and_geth,
    sealed_heights,
)
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import ports_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

LEASE = 15
BANK_A = ("bank-a-1", "bank-a-2", "bank-a-3")


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    text = (
        f"{ports_yaml(5)}\n"
        "members:\n"
        "  bank-a: {validators: 2, spares: 1}\n"
        "  bank-b: {validators: 1, spares: 0}\n"
        f"supervision: {{lease_seconds: {LEASE}}}\n"
    )
    with running_consortium(geth, text) as local:
        yield local


def test_three_agents_race_for_two_identities_and_each_key_runs_once(
    running: LocalConsortium,
) -> None:
    holders = {n: s for n, s in running.signers().items() if n.startswith("bank-a-")}
    assert len(holders) == 2, holders
    assert len({s.lower() for s in holders.values()}) == 2  # two different identities
    indices = sorted(agent(running, n)["identity"]["index"] for n in holders)  # type: ignore[index]
    assert indices == [0, 1]
    (spare,) = set(BANK_A) - set(holders)
    assert agent(running, spare)["state"] == "FOLLOWING"
    for node in BANK_A:  # the agents sign for geth: no key in any keystore
        assert keystore_files(running, node) == []
    network = running.network()
    assert network is not None
    assert sorted(network.signers("bank-a")) == sorted(holders.values())


def test_a_killed_holder_is_replaced_by_the_spare_within_the_lease(
    running: LocalConsortium,
) -> None:
    holders = {n: s for n, s in running.signers().items() if n.startswith("bank-a-")}
    victim = next(n for n in holders if not agent(running, n)["leader"])
    (spare,) = set(BANK_A) - set(holders)
    signer = holders[victim].lower()
    base = head(running, "bank-b-1")
    killed_at = kill_agent_and_geth(running, victim)

    def spare_seals_the_identity() -> bool:
        if agent(running, spare)["state"] != "SEALING":
            return False
        chain = chain_of(running, "bank-b-1")
        return any(s == signer and n > base for n, (s, _) in chain.items())

    wait_for(spare_seals_the_identity, LEASE + 10, "the spare to seal with the victim's key")
    assert time.time() - killed_at <= LEASE + 10
    assert running.signers()[spare].lower() == signer
    assert_no_signer_sealed_twice_at_one_height(running)


def test_a_killed_leader_is_replaced_within_the_lease(running: LocalConsortium) -> None:
    alive = [n for n in BANK_A if agent(running, n)["state"] in ("FOLLOWING", "SEALING")]
    leader = next(n for n in alive if agent(running, n)["leader"])
    killed_at = kill_agent_and_geth(running, leader)
    others = [n for n in alive if n != leader]

    def new_leader() -> bool:
        rows = {(r.member, r.lease): r.holder for r in running.status().leases}
        return rows[("bank-a", "leader")] in others

    wait_for(new_leader, LEASE + 10, "another bank-a agent to lead")
    assert time.time() - killed_at <= LEASE + 10
    assert any(agent(running, n)["leader"] for n in others)


def test_up_restarts_the_dead_agents_as_spares_and_the_chain_is_whole(
    running: LocalConsortium,
) -> None:
    result = running.up(timeout=120)
    assert len(result.started) == 2
    wait_for(lambda: running.status().healthy, 30, "a healthy consortium")
    states = sorted(str(agent(running, n)["state"]) for n in BANK_A)
    assert states == ["FOLLOWING", "SEALING", "SEALING"]
    assert_no_signer_sealed_twice_at_one_height(running)


def test_a_frozen_holder_wakes_up_unable_to_sign_any_height_its_successor_signs(
    running: LocalConsortium,
) -> None:
    """A VM paused longer than the lease (agent and geth frozen with SIGSTOP), a spare
    takes the identity, then the VM resumes: whatever the frozen geth had signed before
    the pause may still come out late, but no height is signed by both."""
    holders = {n: s for n, s in running.signers().items() if n.startswith("bank-a-")}
    victim = next(n for n in holders if not agent(running, n)["leader"])
    (spare,) = set(BANK_A) - set(holders)
    signer = holders[victim].lower()
    paths = running.layout.node(victim)
    pids = [
        json.loads(paths.agent_status.read_text())["pid"],
        json.loads(paths.status.read_text())["geth_pid"],
    ]
    paused_at = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: agent(running, spare)["state"] == "SEALING",
            LEASE + 15,
            "the spare to take the frozen holder's identity",
        )
        taken = head(running, "bank-b-1")
        wait_for(
            lambda: any(
                s == signer and n > taken for n, (s, _) in chain_of(running, "bank-b-1").items()
            ),
            30,
            "the spare to seal with the identity",
        )
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    wait_for(lambda: agent(running, victim)["state"] != "SEALING", 10, "the woken holder to fence")
    resumed = head(running, "bank-b-1")
    wait_for(lambda: head(running, "bank-b-1") >= resumed + 4, 30, "four more blocks")
    by_victim = sealed_heights(paths.geth_log, paused_at - 10)
    by_spare = sealed_heights(running.layout.node(spare).geth_log, paused_at)
    assert by_spare, "the spare sealed nothing"
    assert not by_victim & by_spare, (
        f"one identity sealed these heights twice: {by_victim & by_spare}"
    )
    assert_no_signer_sealed_twice_at_one_height(running)
