"""The consortium's CreditRegistry: deployed once, recorded in the store, found by every bank.

    network/contracts.json   {"version": 2, "chain_id", "genesis_sha256",
                              "contracts": {"CreditRegistry": {address, deployer,
                              governance, tx_hash, block_number, source_sha256,
                              deployed_at}}}

`deploy` is idempotent: a bank's transaction account (the founder's, by convention)
deploys the registry, which asks the Governance contract who may write (each member's
writer accounts) and gives its deployer no power, and records it with a conditional
write (`if_absent`), so two deployers racing record one address (the loser's contract is
left unused, with a warning). A recorded registry whose code is at its address is left
alone (no transaction); a recorded address without code (a new chain under an old store,
or a node that is not synced) is reported plainly, and only `replace=True` deploys a new
one in its place (a write conditional on the old record's ETag).

`ConsortiumResolver` is the `credit` commands' `BankResolver` over the store and the banks'
vaults: bank -> its own node's RPC URL, the recorded registry, its transaction key and the
consortium's pseudonym secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.boundaries import Secret, Store, Vault
from orchestrator.credit.access import BankAccess
from orchestrator.credit.contract import deploy_new_registry, registry_artifact, registry_code_at
from orchestrator.errors import ConfigError, StateError
from orchestrator.network.create import NetworkInfo, read_network
from orchestrator.network.names import (
    NETWORK_INFO,
    PSEUDONYM_SECRET_NAME,
    account_ref_key_name,
    tx_key_name,
)

log = logging.getLogger(__name__)

CONTRACTS_BLOB = "network/contracts.json"
SYNC_WAIT = 10.0
"""Seconds a bank's node may take to reach the registry's deployment block (5 blocks)."""
CONTRACTS_VERSION = 2
REGISTRY = "CreditRegistry"
DEPLOY_HINT = "`poactl contracts deploy` (`poactl up` deploys it unless --no-deploy)"


@dataclass(frozen=True)
class RegistryRecord:
    """Where the consortium's registry is, and how it got there."""

    address: str
    deployer: str  # paid for the deployment; holds no power in the registry
    governance: str  # who may write: the Governance contract's members' writers
    tx_hash: str
    block_number: int
    source_sha256: str
    deployed_at: str  # ISO 8601, UTC
    chain_id: int
    genesis_sha256: str

    def as_json(self) -> bytes:
        entry = asdict(self)
        chain_id, genesis = entry.pop("chain_id"), entry.pop("genesis_sha256")
        doc = {
            "version": CONTRACTS_VERSION,
            "chain_id": chain_id,
            "genesis_sha256": genesis,
            "contracts": {REGISTRY: entry},
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode()


@dataclass(frozen=True)
class DeployOutcome:
    registry: RegistryRecord
    sent: bool  # this call deployed it (one transaction); False: it was there already
    note: str = ""


def _parse(data: bytes) -> RegistryRecord:
    try:
        doc: dict[str, Any] = json.loads(data)
        if doc["version"] != CONTRACTS_VERSION:
            raise StateError(
                f"contracts record version {doc['version']} is not supported (this poactl "
                f"reads version {CONTRACTS_VERSION})",
                obj=CONTRACTS_BLOB,
                hint="upgrade poactl",
            )
        entry = doc["contracts"][REGISTRY]
        return RegistryRecord(
            address=str(entry["address"]),
            deployer=str(entry["deployer"]),
            governance=str(entry["governance"]),
            tx_hash=str(entry["tx_hash"]),
            block_number=int(entry["block_number"]),
            source_sha256=str(entry["source_sha256"]),
            deployed_at=str(entry["deployed_at"]),
            chain_id=int(doc["chain_id"]),
            genesis_sha256=str(doc["genesis_sha256"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise StateError(
            f"malformed contracts record ({type(e).__name__}: {e})",
            obj=CONTRACTS_BLOB,
            hint="the store is damaged or another tool wrote there",
        ) from e


def read_registry(store: Store) -> RegistryRecord | None:
    """The recorded registry, or None when none is recorded."""
    blob = store.read(CONTRACTS_BLOB)
    return None if blob is None else _parse(blob.data)


def _network(store: Store) -> NetworkInfo:
    network = read_network(store)
    if network is None:
        raise StateError(
            "the consortium has not published its network information yet",
            obj=NETWORK_INFO,
            hint="start the consortium first (`poactl up`) and wait until it is ready",
        )
    return network


def deploy(
    store: Store,
    *,
    rpc_url: str,
    deployer_key: Secret,
    replace: bool = False,
    timeout: float = 60.0,
) -> DeployOutcome:
    """Deploy the registry through `rpc_url` unless the recorded one is there; record it.

    `deployer_key` pays for the one transaction and gets no power over the registry:
    who writes is the Governance contract's to say.
    """
    network = _network(store)
    blob = store.read(CONTRACTS_BLOB)
    if blob is not None:
        recorded = _parse(blob.data)
        problem = _recorded_problem(recorded, network, rpc_url)
        if problem is None:
            log.info("CreditRegistry already deployed at %s", recorded.address)
            return DeployOutcome(recorded, sent=False)
        if not replace:
            raise StateError(
                problem,
                obj=CONTRACTS_BLOB,
                hint="if this chain is new, `poactl contracts deploy --replace` deploys a "
                "new registry and records it in place of the old one (the old tradelines "
                "stay on the old chain); if a node is still syncing, wait and try again",
            )
        log.warning("replacing the recorded registry: %s", problem)
    deployment = deploy_new_registry(rpc_url, deployer_key, timeout=timeout)
    record = RegistryRecord(
        address=deployment.address,
        deployer=deployment.deployer,
        governance=deployment.governance,
        tx_hash=deployment.tx_hash,
        block_number=deployment.block_number,
        source_sha256=registry_artifact().source_sha256,
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        chain_id=network.chain_id,
        genesis_sha256=network.genesis_sha256,
    )
    if blob is None:
        written = store.write(CONTRACTS_BLOB, record.as_json(), if_absent=True)
    else:
        written = store.write(CONTRACTS_BLOB, record.as_json(), if_match=blob.etag)
    if written is not None:
        return DeployOutcome(record, sent=True)
    winner = read_registry(store)
    if winner is None:  # recorded and deleted under our feet: say what we know
        raise StateError(
            f"deployed {deployment.address} but could not record it",
            obj=CONTRACTS_BLOB,
            hint="run `poactl contracts deploy` again",
        )
    note = (
        f"another deployment was recorded first; the registry this call deployed at "
        f"{deployment.address} is unused"
    )
    log.warning("%s (the recorded one is %s)", note, winner.address)
    return DeployOutcome(winner, sent=True, note=note)


def _recorded_problem(
    recorded: RegistryRecord, network: NetworkInfo, rpc_url: str, token: Secret | None = None
) -> str | None:
    """None if the recorded registry is usable through `rpc_url`; else what is wrong."""
    where = (
        f"{REGISTRY} {recorded.address} (block {recorded.block_number}, chain {recorded.chain_id})"
    )
    if recorded.genesis_sha256 != network.genesis_sha256:
        return f"{CONTRACTS_BLOB} names {where} of another chain (a different genesis)"
    found = registry_code_at(
        rpc_url,
        recorded.address,
        token=token,
        deployed_in=recorded.block_number,
        sync_wait=SYNC_WAIT,
    )
    if found == "registry":
        return None
    if found == "other":
        return f"another contract's code is at the recorded address of {where}"
    if found == "behind":
        return (
            f"{CONTRACTS_BLOB} names {where}, but {rpc_url} has not reached block "
            f"{recorded.block_number} within {SYNC_WAIT:.0f} s: this node is still syncing, "
            "or the chain was reset"
        )
    return (
        f"{CONTRACTS_BLOB} names {where}, but {rpc_url} has no code there: the chain was "
        "reset, or this node has not synced that block yet"
    )


# -- the credit commands' resolver ---------------------------------------------------


class ConsortiumResolver:
    """`BankResolver` over the consortium's store and the banks' vaults.

    `endpoints` maps each bank to its own node's (or balancer's) RPC URL; `vault` opens a
    bank's vault. Every bank reads and writes through its own endpoint.
    """

    def __init__(
        self,
        store: Store,
        *,
        endpoints: Mapping[str, str],
        vault: Callable[[str], Vault],
        check_code: bool = True,
        tokens: Mapping[str, Secret] | None = None,
        indexes: Mapping[str, str] | None = None,
    ) -> None:
        """`tokens`: each bank's application token, when `endpoints` are balancers;
        `indexes`: each bank's read index (reads go there first)."""
        self._store = store
        self._endpoints = dict(endpoints)
        self._tokens = dict(tokens or {})
        self._indexes = dict(indexes or {})
        self._vault = vault
        self._check_code = check_code

    @property
    def banks(self) -> list[str]:
        return list(self._endpoints)

    def resolve(self, bank: str) -> BankAccess:
        if bank not in self._endpoints:
            raise ConfigError(
                f"unknown bank {bank!r}; the consortium's banks are {', '.join(self.banks)}",
                obj="--bank",
                hint="pass one of the banks above",
            )
        network = _network(self._store)
        recorded = read_registry(self._store)
        if recorded is None:
            raise StateError(
                "no credit registry is recorded for this consortium",
                obj=CONTRACTS_BLOB,
                hint=f"deploy it: {DEPLOY_HINT}",
            )
        rpc_url = self._endpoints[bank]
        if self._check_code:
            problem = _recorded_problem(recorded, network, rpc_url, self._tokens.get(bank))
            if problem is not None:
                raise StateError(
                    problem,
                    obj=CONTRACTS_BLOB,
                    hint=f"if the node is syncing, wait and try again; if the chain was "
                    f"reset, redeploy: {DEPLOY_HINT}",
                )
        vault = self._vault(bank)
        key = vault.get_secret(tx_key_name(bank))
        if key is None:
            raise StateError(
                f"no transaction key for {bank} in its vault",
                obj=tx_key_name(bank),
                hint="the bank's leader agent creates it when the consortium starts; "
                "is it up (`poactl status`)?",
            )
        secret = vault.get_secret(PSEUDONYM_SECRET_NAME)
        if secret is None:
            raise StateError(
                f"no consortium pseudonym secret in {bank}'s vault",
                obj=PSEUDONYM_SECRET_NAME,
                hint="every bank keeps the same secret in its vault; `poactl up` creates it "
                "for a new local consortium and `poactl contracts deploy` shares one among "
                "the local banks' vaults",
            )
        return BankAccess(
            rpc_url=rpc_url,
            registry=recorded.address,
            account_key=key,
            pseudonym_secret=secret,
            names={
                account: member
                for member, info in network.members.items()
                for account in (info.tx_account, info.admin)
            },
            rpc_token=self._tokens.get(bank),
            registry_block=recorded.block_number,
            account_ref_key=vault.get_secret(account_ref_key_name(bank)),
            index_url=self._indexes.get(bank),
        )
