"""Creating the network: each member's identities, the genesis and the network
information, as the leaders publish them in the store (names in `network.names`).

Every write is conditional (`if_absent`), so two leaders racing, or a leader that died
half-way and its successor, never publish two different genesis files. Keys never enter
the store: a member's leader creates its identities in its own bank's vault and
publishes only their addresses.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account

from genesis import (
    GOVERNANCE_ADDRESS,
    CliqueSpec,
    Founder,
    InvalidGenesisSpec,
    Predeployed,
    Rules,
    build_genesis,
    canonical_json,
    governance_contract,
)
from orchestrator.artifacts import load_artifact
from orchestrator.boundaries import ConsortiumData, Secret, Store, Vault
from orchestrator.config import Consortium, Custody, GovernanceRules
from orchestrator.errors import ConfigError, StateError
from orchestrator.geth.keys import address_of_public_key
from orchestrator.network.names import (
    GENESIS,
    NETWORK_INFO,
    NETWORK_INFO_VERSION,
    account_ref_key_name,
    admin_key_name,
    member_blob,
    tx_key_name,
    validator_key_name,
)

TX_ACCOUNT_FUNDS = 10**24  # wei in the genesis for each bank's transaction account

# -- a member's identities -------------------------------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    member: str
    signers: tuple[str, ...]  # identity i seals as signers[i]
    tx_account: str  # writes credit records (a writer in governance)
    admin: str  # the member's one ballot in governance; adds and removes its validators

    def as_json(self) -> bytes:
        body = {
            "member": self.member,
            "signers": list(self.signers),
            "tx_account": self.tx_account,
            "admin": self.admin,
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, member: str, doc: dict[str, Any]) -> MemberInfo:
        return cls(member, tuple(doc["signers"]), doc["tx_account"], doc["admin"])


def _address(key: Secret) -> str:
    address: str = Account.from_key(key.value).address
    return address


def _key_in_vault(vault: Vault, name: str) -> Secret:
    key = vault.get_secret(name)
    if key is None:
        key = Secret("0x" + secrets.token_hex(32))
        vault.set_secret(name, key)
    return key


def ensure_member_identities(
    vault: Vault, member: str, validators: int, *, custody: Custody = "secrets"
) -> MemberInfo:
    """Create what is missing of the member's keys in its vault; return their addresses.

    Idempotent: a second call (or a new leader after a crash) finds the keys and
    creates nothing. In `keys` custody the validator keys are made inside the vault and
    only their public keys come out.
    """
    signers = []
    for i in range(validators):
        name = validator_key_name(member, i)
        if custody == "keys":
            signers.append(address_of_public_key(vault.create_signing_key(name)))
        else:
            signers.append(_address(_key_in_vault(vault, name)))
    tx_account = _address(_key_in_vault(vault, tx_key_name(member)))
    admin = _address(_key_in_vault(vault, admin_key_name(member)))
    _key_in_vault(vault, account_ref_key_name(member))  # the bank's own; never published
    return MemberInfo(member, tuple(signers), tx_account, admin)


def publish_member(store: Store, info: MemberInfo) -> None:
    """Publish the member's addresses once; a different published set is an error."""
    name = member_blob(info.member)
    if store.write(name, info.as_json(), if_absent=True) is not None:
        return
    published = read_member(store, info.member)
    if published != info:
        raise StateError(
            "the identities published for this member differ from the keys in its vault",
            obj=name,
            hint="the vault was replaced, or the store belongs to another consortium; "
            "restore the vault or point the agent at the right store",
        )


def read_member(store: ConsortiumData, member: str) -> MemberInfo | None:
    blob = store.read(member_blob(member))
    if blob is None:
        return None
    doc = _json(blob.data, blob.name)
    if isinstance(doc, dict) and "signers" in doc and "admin" not in doc:
        raise _before_governance(blob.name)
    try:
        return MemberInfo.from_json(doc["member"], doc)
    except (KeyError, TypeError) as e:
        raise StateError(
            f"malformed member blob (missing {e})", obj=blob.name, hint="delete it"
        ) from e


# -- the network ---------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkInfo:
    chain_id: int
    block_period: int
    founder: str
    members: dict[str, MemberInfo]
    genesis_sha256: str

    def signers(self, member: str) -> tuple[str, ...]:
        return self.members[member].signers

    @property
    def all_signers(self) -> list[str]:
        return [s for m in self.members.values() for s in m.signers]


def create_network(store: Store, consortium: Consortium) -> NetworkInfo | None:
    """The founder's leader duty: once every member has published its identities,
    publish the genesis and the network information. None while members are missing."""
    existing = read_network(store)
    if existing is not None:
        return existing
    infos = {m: read_member(store, m) for m in consortium.members()}
    if any(info is None for info in infos.values()):
        return None
    members = {m: info for m, info in infos.items() if info is not None}
    s = consortium.settings
    try:
        genesis = build_genesis(
            CliqueSpec(
                chain_id=s.chain_id,
                signers=[a for info in members.values() for a in info.signers],
                period=s.block_period,
                epoch=s.epoch,
                gas_limit=s.gas_limit,
                # Each bank's transaction and admin accounts pay for their own writes.
                alloc={
                    a: TX_ACCOUNT_FUNDS
                    for info in members.values()
                    for a in (info.tx_account, info.admin)
                },
                contracts={GOVERNANCE_ADDRESS: founding_governance(members, s.governance)},
            )
        )
    except InvalidGenesisSpec as e:
        raise ConfigError(str(e), obj=consortium.source) from e
    data = canonical_json(genesis)
    store.write(GENESIS, data, if_absent=True)
    published = store.read(GENESIS)
    if published is None:  # deleted under our feet: try again on the next round
        return None
    info = {
        "version": NETWORK_INFO_VERSION,
        "chain_id": s.chain_id,
        "block_period": s.block_period,
        "founder": consortium.members()[0],
        "genesis_sha256": hashlib.sha256(published.data).hexdigest(),
        "members": {m: json.loads(i.as_json()) for m, i in members.items()},
    }
    store.write(NETWORK_INFO, json.dumps(info, sort_keys=True).encode(), if_absent=True)
    return read_network(store)


def founding_governance(members: dict[str, MemberInfo], rules: GovernanceRules) -> Predeployed:
    """The Governance contract at block 0: every founding member with its admin, its
    signers as validators and its transaction account as writer."""
    artifact = load_artifact("Governance")
    founders = [
        Founder(admin=i.admin, name=m, validators=i.signers, writers=(i.tx_account,))
        for m, i in members.items()
    ]
    return governance_contract(
        artifact.deployed_bytecode,
        artifact.storage_layout,
        founders,
        Rules(
            lifetime_blocks=rules.proposal_lifetime_blocks,
            validator_cap=rules.validator_cap,
            # A consortium founded with fewer validators keeps its founding count as floor.
            validator_floor=min(
                rules.validator_floor, sum(len(i.signers) for i in members.values())
            ),
        ),
    )


def _before_governance(name: str) -> StateError:
    return StateError(
        "this network was created by an older poactl, before on-chain governance: its "
        "genesis has no Governance contract and its members no admin account",
        obj=name,
        hint="a genesis cannot change under a running chain; start a new network: on one "
        "machine `poactl destroy` (it deletes that chain's data and keys) and `poactl up`",
    )


def read_network(store: ConsortiumData) -> NetworkInfo | None:
    blob = store.read(NETWORK_INFO)
    if blob is None:
        return None
    doc = _json(blob.data, blob.name)
    try:
        if isinstance(doc["version"], int) and doc["version"] < NETWORK_INFO_VERSION:
            raise _before_governance(blob.name)
        if doc["version"] != NETWORK_INFO_VERSION:
            raise StateError(
                f"network information version {doc['version']} is not supported "
                f"(this poactl reads version {NETWORK_INFO_VERSION})",
                obj=blob.name,
                hint="upgrade poactl on this VM",
            )
        return NetworkInfo(
            chain_id=int(doc["chain_id"]),
            block_period=int(doc["block_period"]),
            founder=str(doc["founder"]),
            genesis_sha256=str(doc["genesis_sha256"]),
            members={m: MemberInfo.from_json(m, v) for m, v in doc["members"].items()},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise StateError(
            f"malformed network information ({type(e).__name__}: {e})",
            obj=blob.name,
            hint="the store is damaged or belongs to another tool",
        ) from e


def read_genesis(store: Store, info: NetworkInfo) -> bytes:
    """The published genesis, checked against the hash the network information names."""
    blob = store.read(GENESIS)
    if blob is None or hashlib.sha256(blob.data).hexdigest() != info.genesis_sha256:
        raise StateError(
            "the genesis blob is missing or does not match the network information",
            obj=GENESIS,
            hint="the store is damaged; restore network/ from a member's copy",
        )
    return blob.data


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise StateError(
            f"not valid JSON ({e})",
            obj=name,
            hint="the store is damaged or another tool wrote there; restore or delete it",
        ) from e
