"""The CreditRegistry on chain: its ABI, its custom errors in plain words, and deployment.

`deploy_registry` is idempotent given the address recorded last time: if the registry's
runtime code is at that address it returns it unchanged (no transaction); if the address
holds no code (a new chain, a reset) it deploys again and returns the new address; if
some other code is there it refuses, since members' SDKs would talk to the wrong thing.
`deploy_new_registry` always deploys and returns the `Deployment` (block, transaction);
`registry_code_at` tells what is at an address. Recording the address for a consortium is
`orchestrator.credit.deployment`'s job.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import requests
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from genesis.governance import GOVERNANCE_ADDRESS
from orchestrator.artifacts import Artifact, load_artifact
from orchestrator.boundaries import Secret
from orchestrator.credit.errors import ContractRevert, CreditError
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import (
    AbiRevertDecoder,
    TxSender,
    account_sender,
    check_address,
    transport_error,
)

log = logging.getLogger(__name__)

_FIX_RECORD = "the record failed the registry's own checks; fix the field and send it again"
HINTS: dict[str, str] = {
    "NotMember": "this account does not write for a member bank: governance lists each "
    "member's writer accounts (`poactl members`); check that you use the bank's own "
    "transaction key, and that the bank is still a member",
    "NotFurnisher": "a bank writes and resolves only its own tradelines; the furnisher must "
    "be the sending account's bank (its admin account in governance)",
    "UnknownTradeline": "no such tradeline: check the subject, furnisher and account "
    "reference (a report still in flight must be included first)",
    "InvalidKey": "a zero subject: pass the subject's pseudonym (`CreditClient.subject`)",
    "InvalidAccountRef": "an account reference is 1 to 32 of A-Z a-z 0-9 . _ : / -, starting "
    "with a letter or digit, written left-aligned and zero-padded into bytes32 (ethers: "
    "zeroPadBytes(toUtf8Bytes(ref), 32)); see docs/credit.md",
    "InvalidFieldLength": "a code is at most its Metro 2 width (portfolio type and payment "
    "rating 1 character, the others 2) and the payment history exactly 24 characters",
    "InvalidCode": _FIX_RECORD,
    "InvalidHistory": _FIX_RECORD,
    "InvalidDate": _FIX_RECORD,
    "InvalidAmount": _FIX_RECORD,
    "InvalidLength": "a record is 66 bytes and a batch entry 130 (subject, account reference, "
    "record): encode them with the SDK (`CreditClient.report`, `CreditClient.furnish`)",
    "StaleReport": "the chain already holds a report with a later date of account "
    "information; report with that date or a later one",
    "AlreadyDisputed": "a dispute is already open on this tradeline; the furnisher must "
    "resolve it first",
    "NoOpenDispute": "there is no open dispute (XB, XD, XF, XJ) on this tradeline to resolve",
    "Error": "the contract reverted with a message",
    "Panic": "the contract hit an internal check (Solidity panic); report this as a bug",
}


@functools.cache
def registry_artifact() -> Artifact:
    return load_artifact("CreditRegistry")


def registry_contract(w3: Web3, address: str) -> Contract:
    contract: Contract = w3.eth.contract(
        address=check_address("registry", address), abi=registry_artifact().abi
    )
    return contract


@functools.cache
def _decoder() -> AbiRevertDecoder:
    return AbiRevertDecoder(registry_artifact().abi, hints=HINTS, make=ContractRevert)


def error_names() -> list[str]:
    return _decoder().error_names()


def decode_revert(data: bytes) -> ContractRevert | None:
    """The ContractRevert that revert `data` encodes, or None if it is not ours."""
    decoded = _decoder()(data)
    assert decoded is None or isinstance(decoded, ContractRevert)
    return decoded


def sender_for(w3: Web3, key: Secret, *, url: str) -> TxSender:
    """A TxSender for the account whose private key is `key` (never shown in errors)."""
    return account_sender(w3, key, url=url, decode_revert=decode_revert)


@dataclass(frozen=True)
class Deployment:
    """A registry deployed by one transaction."""

    address: str
    deployer: str  # paid for the deployment; holds no power in the registry
    governance: str  # the Governance contract that says who writes
    tx_hash: str
    block_number: int
    gas_used: int


def registry_code_at(
    rpc_url: str,
    address: str,
    *,
    token: Secret | None = None,
    deployed_in: int | None = None,
    sync_wait: float = 0.0,
) -> str:
    """What is at `address`: "registry" (our runtime code), "none", "other", or "behind".

    With `deployed_in` (the block that deployed it), a node whose head is below that block
    gets up to `sync_wait` seconds to reach it (a bank's node may be a block behind the
    deployer's); "behind" if it is still below then, rather than a misleading "none".
    """
    w3 = http_web3(rpc_url, token=token)
    checked = check_address("registry address", address)
    deadline = time.monotonic() + sync_wait
    try:
        if deployed_in is not None:
            while w3.eth.block_number < deployed_in:
                if time.monotonic() >= deadline:
                    return "behind"
                time.sleep(0.25)
        code = HexBytes(w3.eth.get_code(checked))
    except (requests.ConnectionError, requests.Timeout, OSError) as e:
        raise transport_error(e, rpc_url) from e
    if code == HexBytes(registry_artifact().deployed_bytecode):
        return "registry"
    return "other" if len(code) > 0 else "none"


def deploy_new_registry(
    rpc_url: str,
    deployer_key: Secret,
    *,
    confirmations: int = 0,
    timeout: float = 60.0,
) -> Deployment:
    """Deploy a new registry (one transaction) that asks the genesis Governance contract
    (GOVERNANCE_ADDRESS, a constant in its code) who may write; the deploying account keeps
    no power over it. Waits for inclusion and `confirmations`."""
    w3 = http_web3(rpc_url)
    sender = sender_for(w3, deployer_key, url=rpc_url)
    data = HexBytes(registry_artifact().bytecode)
    inclusion = sender.send(to=None, data=bytes(data), what="registry deployment").wait(
        confirmations=confirmations, timeout=timeout
    )
    receipt = sender.rpc(lambda: w3.eth.get_transaction_receipt(HexBytes(inclusion.tx_hash)))
    deployed = to_checksum_address(receipt["contractAddress"])
    runtime = HexBytes(registry_artifact().deployed_bytecode)
    if HexBytes(sender.rpc(lambda: w3.eth.get_code(deployed))) != runtime:
        raise CreditError(
            "the deployed registry's code differs from the artifact",
            obj=deployed,
            hint="the node may not support evmVersion london; check geth's version",
        )
    log.info("CreditRegistry deployed at %s in block %d", deployed, inclusion.block_number)
    return Deployment(
        address=str(deployed),
        deployer=str(sender.address),
        governance=GOVERNANCE_ADDRESS,
        tx_hash=inclusion.tx_hash,
        block_number=inclusion.block_number,
        gas_used=inclusion.gas_used,
    )


def deploy_registry(
    rpc_url: str,
    deployer_key: Secret,
    *,
    address: str | None = None,
    confirmations: int = 0,
    timeout: float = 60.0,
) -> str:
    """The registry's address: `address` if the registry is deployed there, else a new one."""
    if address is not None:
        recorded = str(check_address("registry address", address))
        found = registry_code_at(rpc_url, recorded)
        if found == "registry":
            log.info("CreditRegistry already deployed at %s", recorded)
            return recorded
        if found == "other":
            raise CreditError(
                "another contract's code is at the recorded registry address",
                obj=recorded,
                hint="check the network information; to start over, clear the recorded "
                "address and deploy again",
            )
        log.warning("no code at the recorded registry address %s; deploying again", recorded)
    deployment = deploy_new_registry(
        rpc_url, deployer_key, confirmations=confirmations, timeout=timeout
    )
    return deployment.address
