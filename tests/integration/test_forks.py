"""A fork of equal weight, settled (`agent.forks`) on two real geth 1.13.15 nodes.

Three signers; the one in turn at block 1 never comes. Node A seals block 1 as signer 1,
node B as signer 2, apart: both out of turn, so both branches weigh the same, and each
signer is "recently signed" on its own branch. Peered, neither syncs the other: the
chain is stalled for good, which is what a healed 2|2 partition of two banks can leave.
Each side applies EIP-3436's choice; the loser steps off its branch (its miner paused,
its head rewound one block, its block's transaction back in its pool), syncs the winner,
and the chain moves again with both transactions in it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from genesis import CliqueSpec
from orchestrator.agent.forks import equal_weight_fork, rewind_to_lose
from orchestrator.geth.ipc import ipc_probe, ipc_request
from orchestrator.geth.lag import Head
from orchestrator.runtime.process import LocalProcess, ProcessRuntime
from tests.helpers.geth import DevNode, dev_node
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.geth

CHAIN_ID = 7443
FUNDS = 10**21


@dataclasses.dataclass(eq=False)
class Side:
    node: DevNode
    signer: LocalAccount
    process: LocalProcess

    def call(self, method: str, *params: Any) -> Any:
        return ipc_request(self.node.ipc, method, list(params))

    def head(self) -> Head:
        block = self.call("eth_getBlockByNumber", "latest", False)
        return Head(
            int(block["number"], 16), time.time(), int(block["timestamp"], 16),
            self.node.name, str(block["hash"]), int(block["totalDifficulty"], 16),
        )  # fmt: skip


def start(geth: str, root: Path, spec: CliqueSpec, signer: LocalAccount) -> Side:
    node = dev_node(geth, root, spec, max_peers=4)
    password = secrets.token_urlsafe(24)
    keystore = Account.encrypt(signer.key, password, kdf="scrypt", iterations=1 << 12)
    (node.datadir / "keystore").mkdir(parents=True, exist_ok=True)
    (node.datadir / "keystore" / f"UTC--test--{signer.address[2:].lower()}").write_text(
        json.dumps(keystore)
    )
    (root / "password").write_text(password)
    argv = [  # a test chain whose geth holds its key (never how poactl runs geth)
        *node.argv, "--unlock", signer.address, "--password", str(root / "password"),
        "--allow-insecure-unlock", "--verbosity", "3",
    ]  # fmt: skip
    process = ProcessRuntime().start(argv, name=root.name, log_file=node.log_file)
    side = Side(node, signer, process)
    wait_for(lambda: isinstance(ipc_probe(node.ipc, "eth_blockNumber", []), str), 60,
             f"{root.name}'s geth to answer")  # fmt: skip
    return side


@pytest.fixture
def forked(geth: str) -> Iterator[tuple[Side, Side, list[str]]]:
    """Nodes A and B on equal-weight branches at block 1, peered, each with a
    transaction of its own in its block; the transactions' hashes."""
    root = Path(tempfile.mkdtemp(prefix="poa-fork-", dir="/tmp"))
    signers = sorted(
        (Account.create() for _ in range(3)), key=lambda a: bytes.fromhex(a.address[2:])
    )
    absent, one, two = signers[1], signers[0], signers[2]  # block 1 is signers[1 % 3]'s turn
    payers = [Account.create(), Account.create()]
    spec = CliqueSpec(
        chain_id=CHAIN_ID, signers=[s.address for s in signers], period=1,
        alloc={p.address: FUNDS for p in payers},
    )  # fmt: skip
    sides: list[Side] = []
    try:
        for name, signer in (("a", one), ("b", two)):
            sides.append(start(geth, root / name, spec, signer))
        hashes = []
        for side, payer in zip(sides, payers, strict=True):
            tx = payer.sign_transaction({
                "to": payer.address, "value": 1, "gas": 21_000, "nonce": 0,
                "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "chainId": CHAIN_ID,
            })  # fmt: skip
            hashes.append(side.call("eth_sendRawTransaction", "0x" + tx.raw_transaction.hex()))
            side.call("miner_setEtherbase", side.signer.address)
            side.call("miner_start")
        for side in sides:
            wait_for(lambda s=side: s.head().number == 1, 30, f"{side.node.name} to seal block 1")
        a, b = sides
        assert a.head().hash != b.head().hash and a.head().td == b.head().td
        assert absent.address not in (a.signer.address, b.signer.address)
        b.call("admin_addPeer", a.call("admin_nodeInfo")["enode"])
        wait_for(lambda: a.call("net_peerCount") == "0x1", 30, "the two nodes to peer")
        yield a, b, hashes
    finally:
        for side in sides:
            side.process.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_peered_equal_weight_branches_stay_apart_without_the_resolver(
    forked: tuple[Side, Side, list[str]],
) -> None:
    a, b, _ = forked
    deadline = time.monotonic() + 15  # longer than geth's 10 s forced sync cycle
    while time.monotonic() < deadline:
        assert a.head().number == b.head().number == 1
        assert a.head().hash != b.head().hash
        time.sleep(1)


def test_the_loser_steps_off_its_branch_and_the_chain_moves_on_with_every_transaction(
    forked: tuple[Side, Side, list[str]],
) -> None:
    a, b, hashes = forked
    heads = {a: a.head(), b: b.head()}
    forks = {s: equal_weight_fork(heads[s], [h for o, h in heads.items() if o is not s])
             for s in (a, b)}  # fmt: skip
    assert all(f is not None for f in forks.values())
    winners = {f.winner.hash for f in forks.values() if f is not None}
    assert len(winners) == 1  # both sides choose the same branch
    losers = [s for s, f in forks.items() if f is not None and f.own_loses]
    assert len(losers) == 1
    (loser,) = losers
    winner = a if loser is b else b
    fork = forks[loser]
    assert fork is not None
    loser.call("miner_stop")  # the agent pauses its sealer (`Sealer.pause`)
    rewind_to_lose(loser.node.ipc, fork)
    assert loser.head().number == 0
    wait_for(
        lambda: loser.head().hash == heads[winner].hash, 30, "the loser to take the winner's block"
    )
    loser.call("miner_start")
    wait_for(lambda: min(a.head().number, b.head().number) >= 2, 30, "the chain to move on")
    for tx in hashes:
        wait_for(lambda t=tx: winner.call("eth_getTransactionReceipt", t) is not None, 30,
                 f"transaction {tx} in the final chain")  # fmt: skip
