"""A reorg under the read index, on two real geth nodes: one genesis, one signer, each
sealing its own fork (a network split), each with the registry and a different record
of one subject; then node A stops sealing and peers with node B, whose longer chain
replaces A's. The index that followed A must roll back to the last block both share,
never keep A's record again, and take B's."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.boundaries import Secret
from orchestrator.credit import CreditClient, deploy_registry
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_request
from orchestrator.index.follower import Follower, follow_until
from orchestrator.index.node import NodeClient
from orchestrator.index.sqlite import SqliteIndex
from orchestrator.index.store import Registry
from tests.credit.conftest import ACCOUNTS, credit_spec, record
from tests.helpers.geth import DevNode, sealing_chain
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]


@dataclass(frozen=True)
class Forks:
    a: DevNode
    b: DevNode
    keys: dict[str, Secret]
    secret: Secret

    def client(self, node: DevNode, registry: str) -> CreditClient:
        return CreditClient(
            node.rpc_url,
            registry=registry,
            account_key=self.keys["bank_a"],
            pseudonym_secret=self.secret,
        )


@pytest.fixture
def forks(geth: str, tmp_path: Path) -> Iterator[Forks]:
    accounts = {name: Account.create() for name in ACCOUNTS}
    spec = credit_spec(accounts)  # built once: both nodes get the same genesis
    signer = Account.create()
    with (
        sealing_chain(geth, tmp_path / "a", spec, signer=signer, max_peers=3) as a,
        sealing_chain(geth, tmp_path / "b", spec, signer=signer, max_peers=3) as b,
    ):
        keys = {name: Secret(acct.key.hex()) for name, acct in accounts.items()}
        yield Forks(a, b, keys, Secret(secrets.token_hex(32)))


def _hash_at(node: DevNode, number: int) -> bytes:
    block = http_web3(node.rpc_url).eth.get_block(number)
    return bytes(block["hash"])


def test_a_reorg_rolls_the_index_back_and_the_lost_record_is_never_kept(
    forks: Forks, tmp_path: Path
) -> None:
    a, b = forks.a, forks.b
    registry = deploy_registry(a.rpc_url, forks.keys["admin"])  # nonce 0 on both forks:
    assert deploy_registry(b.rpc_url, forks.keys["admin"]) == registry  # one address
    on_a, on_b = forks.client(a, registry), forks.client(b, registry)
    subject = on_a.subject("REORG-0001")
    lost = on_a.report(subject, record("REORG-1", current_balance=100)).wait()
    kept = on_b.report(subject, record("REORG-1", current_balance=200)).wait()
    on_b.report(on_b.subject("REORG-0002"), record("REORG-2")).wait()

    store = SqliteIndex(tmp_path / "index.sqlite")
    store.reset(Registry(registry, 0))
    follower = Follower(store, NodeClient([a.rpc_url]), Registry(registry, 0))
    follow_until(follower)
    (entry,) = store.read(subject).logs
    assert entry.tx_hash.hex() == lost.tx_hash.removeprefix("0x")
    assert entry.block_hash == _hash_at(a, lost.block_number)

    # A stops sealing; B's fork grows longer (more in-turn blocks: more difficulty).
    ipc_request(a.ipc, "miner_stop")
    a_head = http_web3(a.rpc_url).eth.block_number
    wait_for(lambda: http_web3(b.rpc_url).eth.block_number > a_head + 3, 30, "B to outgrow A")
    enode = ipc_request(b.ipc, "admin_nodeInfo")["enode"]
    ipc_request(a.ipc, "admin_addPeer", [enode])
    wait_for(
        lambda: _hash_at(a, lost.block_number) != entry.block_hash,
        60,
        "node A to take node B's chain",
    )

    rolled_back = 0
    while (step := follower.step()).more or step.rolled_back:
        rolled_back += step.rolled_back
    assert rolled_back > 0
    logs = store.read(subject).logs
    assert [e.tx_hash.hex() for e in logs] == [kept.tx_hash.removeprefix("0x")]
    assert all(e.block_hash == _hash_at(a, e.block_number) for e in logs)
    every = [e for s in (subject, on_b.subject("REORG-0002")) for e in store.read(s).logs]
    assert len(every) == 2
    tip = store.tip()
    assert tip is not None and tip.hash == _hash_at(a, tip.number)

    # What the SDK reads from the node now is what the index holds.
    line = on_a.tradeline(subject, on_a.furnisher, "REORG-1")
    assert line is not None and line.record.current_balance == 200 and line.version == 1
