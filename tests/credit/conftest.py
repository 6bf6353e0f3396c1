"""One real geth 1.13.15 Clique signer for the credit tests, banks prefunded in genesis.

`chain` (session scope: one geth for every credit test module) is the helpers'
`sealing_chain` on a genesis (period 1) whose `alloc` funds the deployer ("admin"), three
bank accounts and three governance admins, and whose Governance contract has bank A
and bank B as members. `registry`
deploys a fresh CreditRegistry per test module, which asks that Governance who writes;
bank C is funded but not a member. `files` writes every key and the secret to mode-600
files for the command-line tests.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from genesis import GOVERNANCE_ADDRESS, CliqueSpec, Founder, Rules, governance_contract
from orchestrator.boundaries import Secret
from orchestrator.credit import CreditClient, Record, deploy_registry
from orchestrator.credit.records import record_to_mapping
from orchestrator.geth.client import http_web3
from orchestrator.governance import Governance
from orchestrator.governance.client import governance_artifact
from tests.helpers.geth import sealing_chain

CHAIN_ID = 7331
FUNDS = 10**24  # a million ether each
ACCOUNTS = ("admin", "bank_a", "bank_b", "bank_c", "gov_a", "gov_b", "gov_c")
# Governance in the genesis: bank A and bank B are members, their transaction accounts
# their writers, gov_a and gov_b their admins; bank C (admin gov_c) is not a member.
FOUNDERS = (("bank-a", "gov_a", "bank_a"), ("bank-b", "gov_b", "bank_b"))
# National IDs used by the credit tests; the privacy test scans the chain for each.
NATIONAL_IDS = ("123-45-6789", "987 65 4321", "AB-123456-C", "555-01-2222", "X1234567")


@dataclass(frozen=True)
class Chain:
    rpc_url: str
    keys: dict[str, Secret]
    addresses: dict[str, str]
    pseudonym_secret: Secret
    log_file: Path

    def governance(self, who: str) -> Governance:
        """Governance with `who`'s key (gov_a, gov_b or gov_c)."""
        return Governance(self.rpc_url, admin_key=self.keys[who])

    def w3(self) -> Web3:
        return http_web3(self.rpc_url)

    def client(self, who: str, registry: str) -> CreditClient:
        return CreditClient(
            self.rpc_url,
            registry=registry,
            account_key=self.keys[who],
            pseudonym_secret=self.pseudonym_secret,
        )


def credit_spec(accounts: dict[str, LocalAccount]) -> CliqueSpec:
    """The credit tests' genesis: every account funded, bank A and bank B members."""
    artifact = governance_artifact()
    founders = [
        Founder(
            admin=accounts[admin].address, name=name,
            validators=[Account.create().address], writers=[accounts[writer].address],
        )
        for name, admin, writer in FOUNDERS
    ]  # fmt: skip
    governance = governance_contract(
        artifact.deployed_bytecode, artifact.storage_layout, founders, Rules(validator_floor=1)
    )
    return CliqueSpec(
        chain_id=CHAIN_ID,
        signers=["0x" + "00" * 20],  # replaced by the chain's own signer
        period=1,
        alloc={a.address: FUNDS for a in accounts.values()},
        contracts={GOVERNANCE_ADDRESS: governance},
    )


@pytest.fixture(scope="package")
def chain(geth: str) -> Iterator[Chain]:
    root = Path(tempfile.mkdtemp(prefix="poa-credit-", dir="/tmp"))
    accounts = {name: Account.create() for name in ACCOUNTS}
    spec = credit_spec(accounts)
    try:
        with sealing_chain(geth, root, spec) as node:
            yield Chain(
                rpc_url=node.rpc_url,
                keys={name: Secret(a.key.hex()) for name, a in accounts.items()},
                addresses={name: a.address for name, a in accounts.items()},
                pseudonym_secret=Secret(secrets.token_hex(32)),
                log_file=node.log_file,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def private_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, chain: Chain) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("credit-cli")
    out = {name: private_file(d / f"{name}.key", chain.keys[name].value) for name in chain.keys}
    out["secret"] = private_file(d / "pseudonym.secret", chain.pseudonym_secret.value)
    out["account_ref_key"] = private_file(d / "account-ref.key", secrets.token_hex(32))
    doc = record_to_mapping(record("CLI-LOAN"))
    doc["account_type"] = "00"
    (d / "record.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    bad = {**doc, "account_status": "99"}
    (d / "bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    return out | {"record": d / "record.yaml", "bad": d / "bad.yaml"}


@pytest.fixture(scope="module")
def registry(chain: Chain) -> str:
    """A fresh registry for the module: admin deploys, bank A and bank B are members."""
    return deploy_registry(chain.rpc_url, chain.keys["admin"])


@pytest.fixture(scope="module")
def bank_a(chain: Chain, registry: str) -> CreditClient:
    return chain.client("bank_a", registry)


@pytest.fixture(scope="module")
def bank_b(chain: Chain, registry: str) -> CreditClient:
    return chain.client("bank_b", registry)


@pytest.fixture(scope="module")
def bank_c(chain: Chain, registry: str) -> CreditClient:
    """Funded, but not a member of the registry."""
    return chain.client("bank_c", registry)


@pytest.fixture(scope="module")
def admin(chain: Chain, registry: str) -> CreditClient:
    return chain.client("admin", registry)


TODAY = dt.date.today()

BASE_RECORD = Record(
    account_ref="LOAN-0001",
    portfolio_type="I",
    account_type="00",
    date_opened=TODAY - dt.timedelta(days=400),
    date_of_account_information=TODAY - dt.timedelta(days=1),
    credit_limit=0,
    highest_credit=20_000,
    current_balance=15_000,
    amount_past_due=0,
    account_status="11",
    payment_history="000000000000BBBBBBBBBBBB",
)


def record(account_ref: str = "LOAN-0001", **changes: object) -> Record:
    """A valid installment-loan record with `changes` applied."""
    return replace(BASE_RECORD, account_ref=account_ref, **changes)  # type: ignore[arg-type]
