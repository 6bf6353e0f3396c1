"""Send transactions signed locally with one account: nonces, fees, inclusion.

The node never signs (no `eth_sendTransaction`): `TxSender` signs EIP-1559 transactions
with the account's key and sends them raw. Nonces come from a thread-safe
`NonceAllocator`, so many writes can be in flight at once; it learns the next nonce from
the node (`pending` count) the first time and again whenever the node answers with a
nonce error, and the transaction is re-signed with a fresh nonce. Gas is estimated first
(`eth_estimateGas`), which is also where a contract's refusal shows up, before any gas
is spent. `PendingTx.wait` waits for inclusion and N confirmations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from orchestrator.boundaries import Secret
from orchestrator.errors import (
    ConfigError,
    ContractRevert,
    ServiceUnavailable,
    TransactionError,
    WaitTimeout,
)

log = logging.getLogger(__name__)

# geth's answers that mean "this nonce is not the one to use".
NONCE_ERRORS = ("nonce too low", "replacement transaction underpriced", "nonce too high")
ALREADY_KNOWN = "already known"
SEND_ATTEMPTS = 5
GAS_MARGIN = 1.25  # estimates run against the latest block; state may move before inclusion
FEE_TTL_SECONDS = 1.0

RevertDecoder = Callable[[bytes], ContractRevert | None]
_PANIC_SELECTOR = function_signature_to_4byte_selector("Panic(uint256)")
_ERROR_SELECTOR = function_signature_to_4byte_selector("Error(string)")
PANIC_HINT = "the contract hit an internal check (Solidity panic); report this as a bug"


class AbiRevertDecoder:
    """Revert data -> the contract's custom error by name, with its arguments shown
    plainly and the caller's hint for it; None for data that is not the contract's."""

    def __init__(
        self,
        abi: list[dict[str, Any]],
        *,
        hints: Mapping[str, str],
        make: Callable[..., ContractRevert],
    ) -> None:
        self.hints = hints
        self.make = make
        self.errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            names = [i["name"] for i in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            self.errors[selector] = (item["name"], names, types)

    def error_names(self) -> list[str]:
        return sorted(name for name, _, _ in self.errors.values())

    def __call__(self, data: bytes) -> ContractRevert | None:
        selector, body = bytes(data[:4]), bytes(data[4:])
        try:
            if selector == _ERROR_SELECTOR:
                (message,) = abi_decode(["string"], body)
                hint = self.hints.get("Error", "the contract reverted with a message")
                return self.make("Error", {"message": repr(message)}, hint=hint)
            if selector == _PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], body)
                hint = self.hints.get("Panic", PANIC_HINT)
                return self.make("Panic", {"code": hex(code)}, hint=hint)
            known = self.errors.get(selector)
            if known is None:
                return None
            name, names, types = known
            values = abi_decode(types, body)
        except Exception:  # malformed revert data: not something we can explain
            log.debug("cannot decode revert data %s", HexBytes(data).to_0x_hex())
            return None
        args = {n: _shown(t, v) for n, t, v in zip(names, types, values, strict=True)}
        return self.make(name, args, hint=self.hints.get(name))


def _shown(kind: str, value: Any) -> object:
    if kind.startswith("bytes") and kind != "bytes32":
        text = bytes(value).rstrip(b"\0")
        return repr(text.decode("ascii", errors="replace")) if text else "blank"
    if kind == "bytes32":
        return "0x" + bytes(value).hex()
    if kind == "address":
        return to_checksum_address(value)
    return repr(value) if isinstance(value, str) else value


def check_address(field: str, value: object) -> ChecksumAddress:
    """A checksummed address; ConfigError naming `field` otherwise."""
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(
            f"{value!r} is not an account address",
            obj=field,
            hint="give a 20-byte hex address 0x… (mixed case only with a valid checksum)",
        )
    return to_checksum_address(value)


def revert_of(e: ContractLogicError, decode: RevertDecoder) -> ContractRevert:
    """The refusal in `e`, decoded with `decode` where it is the contract's own error."""
    data = e.data
    raw = bytes(HexBytes(data)) if isinstance(data, str) and data.startswith("0x") else b""
    decoded = decode(raw) if raw else None
    if decoded is not None:
        return decoded
    return ContractRevert("unknown", {"message": str(e)}, hint="see the node's log")


def account_sender(w3: Web3, key: Secret, *, url: str, decode_revert: RevertDecoder) -> TxSender:
    """A TxSender for the account whose private key is `key` (never shown in errors)."""
    try:
        account = Account.from_key(key.value)
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            "the account key is not a valid secp256k1 private key",
            obj="account key",
            hint="the key is 32 bytes as 64 hex digits (0x optional); check the bank's vault",
        ) from e
    return TxSender(w3, account, decode_revert=decode_revert, url=url)


NO_NODE_ANSWERED = "no node of the bank answered"  # the balancer's answer when its pool is silent


def balancer_unanswered(e: Web3RPCError) -> bool:
    """Whether `e` is the bank's balancer saying none of its nodes answered (try again)."""
    error = (e.rpc_response or {}).get("error")
    return isinstance(error, dict) and str(error.get("message", "")).startswith(NO_NODE_ANSWERED)


def transport_error(e: Exception, url: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the node did not answer: {e}",
        obj=url,
        hint="check that the node (or the bank's balancer) is up and the RPC URL is right",
    )


class NonceAllocator:
    """Hands out consecutive nonces for one account across threads.

    `fetch` asks the node for the account's next nonce (its `pending` transaction
    count). `resync` is called after a nonce error: the next allocation continues from
    the node's count or our own counter, whichever is higher. `invalidate` is called when
    a send failed without an answer (we cannot know whether the node took it): the next
    allocation restarts from the node's count, filling any gap we may have left.
    """

    def __init__(self, fetch: Callable[[], int]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._next: int | None = None

    def allocate(self) -> int:
        with self._lock:
            if self._next is None:
                self._next = self._fetch()
            nonce = self._next
            self._next += 1
            return nonce

    def resync(self) -> None:
        node = self._fetch()
        with self._lock:
            self._next = node if self._next is None else max(self._next, node)

    def invalidate(self) -> None:
        with self._lock:
            self._next = None


@dataclass(frozen=True)
class Inclusion:
    """A transaction that is in a block (and has the confirmations asked for)."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    nonce: int


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed here, not sent yet: its raw bytes, hash, nonce and call."""

    raw: bytes
    tx_hash: str
    nonce: int
    call: Mapping[str, Any]


class PendingTx:
    """A sent transaction; `wait` for its inclusion."""

    def __init__(
        self,
        sender: TxSender,
        tx_hash: str,
        nonce: int,
        call: Mapping[str, Any],
        what: str,
    ) -> None:
        self._sender = sender
        self.tx_hash = tx_hash
        self.nonce = nonce
        self._call = dict(call)
        self.what = what

    def __repr__(self) -> str:
        return f"PendingTx({self.what}, {self.tx_hash}, nonce={self.nonce})"

    def wait(
        self, *, confirmations: int = 0, timeout: float = 30.0, poll: float = 0.2
    ) -> Inclusion:
        """Wait until the transaction is in a block with `confirmations` blocks on top.

        ContractRevert if it was included but reverted (the reason is replayed from the
        node); WaitTimeout if it is not there in time.
        """
        w3 = self._sender.w3
        started = time.monotonic()
        state = "sent, not yet in a block"
        while True:
            receipt = self._receipt()
            if receipt is not None:
                number = int(receipt["blockNumber"])
                if int(receipt["status"]) != 1:
                    raise self._sender.explain_failure(self._call, receipt, self.tx_hash)
                head = self._sender.rpc(lambda: int(w3.eth.block_number))
                state = f"in block {number}, head {head}, {head - number} confirmations"
                if head - number >= confirmations:
                    # Re-read: under Clique a short fork can move the transaction.
                    again = self._receipt()
                    if again is not None and again["blockHash"] == receipt["blockHash"]:
                        return Inclusion(
                            tx_hash=self.tx_hash,
                            block_number=number,
                            block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
                            gas_used=int(receipt["gasUsed"]),
                            nonce=self.nonce,
                        )
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise WaitTimeout(
                    f"{self.what} was not included with {confirmations} confirmations",
                    elapsed=elapsed,
                    last_state=state,
                    obj=self.tx_hash,
                    hint="check that the validators are sealing (`poactl status`) and that "
                    "the account has funds for gas",
                )
            time.sleep(poll)

    def _receipt(self) -> Mapping[str, Any] | None:
        w3 = self._sender.w3

        def ask() -> Mapping[str, Any] | None:
            try:
                receipt: Mapping[str, Any] = w3.eth.get_transaction_receipt(HexBytes(self.tx_hash))
                return receipt
            except TransactionNotFound:
                return None

        found: Mapping[str, Any] | None = self._sender.rpc(ask)
        return found


class TxSender:
    """Signs and sends transactions from `account` through `w3`; thread-safe."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        decode_revert: RevertDecoder,
        url: str = "the node",
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address: ChecksumAddress = account.address
        self.url = url
        self._decode_revert = decode_revert
        self.nonces = NonceAllocator(self._pending_count)
        self._chain_id: int | None = None
        self._fee_lock = threading.Lock()
        self._fees: tuple[float, int, int] | None = None  # (fetched at, max fee, tip)

    # -- the node, with transport errors made plain ----------------------------------

    def rpc(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout, OSError) as e:
            raise transport_error(e, self.url) from e
        except Web3RPCError as e:
            if balancer_unanswered(e):
                raise transport_error(e, self.url) from e
            raise

    def _pending_count(self) -> int:
        return int(self.rpc(lambda: self.w3.eth.get_transaction_count(self.address, "pending")))

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc(lambda: self.w3.eth.chain_id))
        return self._chain_id

    def base_fee(self) -> int:
        """The latest block's base fee per gas, in wei (as cached by `fees`)."""
        max_fee, tip = self.fees()
        return (max_fee - tip) // 2

    def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): twice the base fee plus the node's tip."""
        with self._fee_lock:
            now = time.monotonic()
            if self._fees is None or now - self._fees[0] > FEE_TTL_SECONDS:
                block = self.rpc(lambda: self.w3.eth.get_block("latest"))
                tip = int(self.rpc(lambda: self.w3.eth.max_priority_fee))
                base = int(block.get("baseFeePerGas", 0))
                self._fees = (now, 2 * base + tip, tip)
            return self._fees[1], self._fees[2]

    # -- sending -----------------------------------------------------------------------

    def estimate(self, call: Mapping[str, Any]) -> int:
        """Gas for `call` with a margin; ContractRevert if the contract refuses it."""
        try:
            estimate = int(self.rpc(lambda: self.w3.eth.estimate_gas(dict(call))))  # type: ignore[arg-type]
        except ContractLogicError as e:
            raise self.revert_error(e) from e
        return int(estimate * GAS_MARGIN)

    def call(self, call: Mapping[str, Any], block: int | str = "latest") -> bytes:
        """eth_call; ContractRevert if the contract refuses it."""
        try:
            return bytes(self.rpc(lambda: self.w3.eth.call(dict(call), block)))  # type: ignore[arg-type]
        except ContractLogicError as e:
            raise self.revert_error(e) from e

    def revert_error(self, e: ContractLogicError) -> ContractRevert:
        """The contract's refusal in `e`, decoded from the ABI where it is one of ours."""
        return revert_of(e, self._decode_revert)

    def call_of(self, *, to: str | None, data: bytes, value: int = 0) -> dict[str, Any]:
        """The call (from, to, data, value) of a transaction from this account."""
        call: dict[str, Any] = {"from": self.address, "data": HexBytes(data).to_0x_hex()}
        if value:
            call["value"] = hex(value)
        if to is not None:
            call["to"] = to
        return call

    def sign(self, call: Mapping[str, Any], *, gas: int, nonce: int) -> SignedTx:
        """`call` (from `call_of`) as an EIP-1559 transaction with `nonce`, signed here."""
        max_fee, tip = self.fees()
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id(),
            "nonce": nonce,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "value": int(call.get("value", "0x0"), 16),
            "data": call["data"],
        }
        if "to" in call:
            tx["to"] = call["to"]
        signed = self.account.sign_transaction(tx)
        return SignedTx(
            raw=bytes(signed.raw_transaction),
            tx_hash=HexBytes(signed.hash).to_0x_hex(),
            nonce=nonce,
            call=dict(call),
        )

    def send(
        self,
        *,
        to: str | None,
        data: bytes,
        gas: int | None = None,
        value: int = 0,
        what: str = "transaction",
    ) -> PendingTx:
        """Estimate (unless `gas`), sign with a fresh nonce, send (with `value` wei); the
        PendingTx.

        The contract's refusal surfaces here as ContractRevert, before any gas is spent.
        """
        call = self.call_of(to=to, data=data, value=value)
        limit = gas if gas is not None else self.estimate(call)
        last: Exception | None = None
        for attempt in range(1, SEND_ATTEMPTS + 1):
            nonce = self.nonces.allocate()
            signed = self.sign(call, gas=limit, nonce=nonce)
            tx_hash = signed.tx_hash
            try:
                self.w3.eth.send_raw_transaction(signed.raw)
            except Web3RPCError as e:
                message = str(e.message).lower()
                if ALREADY_KNOWN in message:
                    break  # this very transaction is already in the pool
                if any(m in message for m in NONCE_ERRORS):
                    log.info("nonce %d refused (%s); resyncing from the node", nonce, message)
                    self.nonces.resync()
                    last = e
                    continue
                raise TransactionError(
                    f"the node refused the {what}: {e.message}",
                    obj=self.address,
                    hint="check the account's balance and the node's log",
                ) from e
            except (requests.ConnectionError, requests.Timeout, OSError) as e:
                self.nonces.invalidate()
                raise transport_error(e, self.url) from e
            if attempt > 1:
                log.info("%s sent with nonce %d after %d attempts", what, nonce, attempt)
            break
        else:
            raise TransactionError(
                f"no free nonce after {SEND_ATTEMPTS} attempts: {last}",
                obj=self.address,
                hint="another process may be sending from the same account; give each "
                "writer its own account, or retry",
            ) from last
        log.debug("sent %s %s (nonce %d, gas %d)", what, tx_hash, nonce, limit)
        return PendingTx(self, tx_hash, nonce, call, what)

    def explain_failure(
        self, call: Mapping[str, Any], receipt: Mapping[str, Any], tx_hash: str
    ) -> TransactionError:
        """Why an included transaction reverted: replay it on the state after its block."""
        block = int(receipt["blockNumber"])
        try:
            self.call(call, block)
        except ContractRevert as e:
            e.tx_hash = tx_hash
            e.what = f"{e.what} (transaction {tx_hash}, block {block})"
            return e
        tx = self.rpc(lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)))
        if int(receipt["gasUsed"]) >= int(tx["gas"]):
            return TransactionError(
                f"the transaction ran out of gas ({receipt['gasUsed']} used) in block {block}",
                obj=tx_hash,
                hint="send it again without a fixed gas limit so it is estimated",
            )
        return TransactionError(
            f"the transaction reverted in block {block}; replaying it now succeeds",
            obj=tx_hash,
            hint="the state changed in between (a concurrent write); read it and retry",
        )
