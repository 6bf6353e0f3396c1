"""One real geth 1.13.15 for the governance tests, with the Governance contract in its
genesis (founders bank-a and bank-b) and ten funded admin accounts.

The genesis instance is the one a network runs. The rule tests each deploy a fresh
instance of the same code through its constructor (`fresh`), with founders taken from
the funded accounts, so that every test starts from a known membership.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from genesis import GOVERNANCE_ADDRESS, CliqueSpec, Founder, Rules, governance_contract
from orchestrator.boundaries import Secret
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import account_sender
from orchestrator.governance import Governance
from orchestrator.governance.client import decode_revert, governance_artifact
from tests.helpers.geth import DevNode, sealing_chain

CHAIN_ID = 7441
FUNDS = 10**24
ADMINS = 10
LIFETIME = 6  # blocks, in the genesis instance's rules


def random_address() -> str:
    return str(Account.create().address)


@dataclass(frozen=True)
class GovChain:
    node: DevNode
    keys: list[Secret]  # funded admin accounts
    addresses: list[str]
    genesis_founders: tuple[Founder, ...]
    genesis_rules: Rules

    def client(self, who: int | None = None, address: str = GOVERNANCE_ADDRESS) -> Governance:
        key = None if who is None else self.keys[who]
        return Governance(self.node.rpc_url, admin_key=key, address=address)


def founders_of(chain: GovChain, admins: Sequence[int], validators: int = 2) -> list[Founder]:
    return [
        Founder(
            admin=chain.addresses[i],
            name=f"bank-{chr(ord('a') + i)}",
            validators=[random_address() for _ in range(validators)],
            writers=[random_address()],
        )
        for i in admins
    ]


def deploy(chain: GovChain, founders: Sequence[Founder], rules: Rules) -> str:
    """A Governance instance made by its constructor; its address."""
    w3 = http_web3(chain.node.rpc_url)
    artifact = governance_artifact()
    cap = rules.validator_cap or max(len(f.validators) for f in founders)
    args = [
        [
            (f.admin, f.name.encode().ljust(32, b"\0"), list(f.validators), list(f.writers))
            for f in founders
        ],
        rules.lifetime_blocks,
        cap,
        rules.validator_floor,
    ]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = HexBytes(factory.constructor(*args).data_in_transaction)
    sender = account_sender(w3, chain.keys[-1], url=chain.node.rpc_url, decode_revert=decode_revert)
    inclusion = sender.send(to=None, data=bytes(data), what="governance").wait(timeout=30)
    receipt = w3.eth.get_transaction_receipt(HexBytes(inclusion.tx_hash))
    return to_checksum_address(receipt["contractAddress"])


@pytest.fixture(scope="package")
def gov_chain(geth: str) -> Iterator[GovChain]:
    root = Path(tempfile.mkdtemp(prefix="poa-gov-", dir="/tmp"))
    accounts = [Account.create() for _ in range(ADMINS)]
    addresses = [a.address for a in accounts]
    rules = Rules(lifetime_blocks=LIFETIME)
    keys = [Secret(a.key.hex()) for a in accounts]
    stub = GovChain(None, keys, addresses, (), rules)  # type: ignore[arg-type]
    founders = tuple(founders_of(stub, [0, 1]))
    artifact = governance_artifact()
    spec = CliqueSpec(
        chain_id=CHAIN_ID,
        signers=["0x" + "00" * 20],  # replaced by the chain's own signer
        period=1,
        alloc=dict.fromkeys(addresses, FUNDS),
        contracts={
            GOVERNANCE_ADDRESS: governance_contract(
                artifact.deployed_bytecode, artifact.storage_layout, founders, rules
            )
        },
    )
    try:
        with sealing_chain(geth, root, spec) as node:
            yield GovChain(node, keys, addresses, founders, rules)
    finally:
        shutil.rmtree(root, ignore_errors=True)


Fresh = Callable[..., tuple[str, list[Founder]]]


@pytest.fixture
def fresh(gov_chain: GovChain) -> Fresh:
    """fresh(admins=[0, 1], validators=2, cap=0, floor=2, lifetime=100) ->
    (address, founders): a new instance with those founders."""

    def make(
        admins: Sequence[int] = (0, 1),
        *,
        validators: int = 2,
        cap: int = 0,
        floor: int = 2,
        lifetime: int = 100,
    ) -> tuple[str, list[Founder]]:
        founders = founders_of(gov_chain, admins, validators)
        rules = Rules(lifetime_blocks=lifetime, validator_cap=cap, validator_floor=floor)
        return deploy(gov_chain, founders, rules), founders

    return make
