"""Pre-signed writes: the fast EIP-1559 signer, the calldata templates (`report` of one
record, `furnish` of K) with each subject's byte offset, each bank's lane (key, node,
nonce, template) and the batches of transactions a step sends, signed before it starts."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_hash.auto import keccak
from hexbytes import HexBytes

from orchestrator.credit.records import ENTRY_BYTES, Record, account_ref_bytes, record_to_contract

try:  # libsecp256k1 from PyPI (`pip install coincurve`); eth_keys also uses it when present
    import coincurve
except ImportError:  # pragma: no cover - the slower eth_account path below
    coincurve = None  # type: ignore[assignment]
FAST_SIGNING = bool(coincurve)  # else Signer signs with eth_account (the report says which)

TIP_WEI = 10**9  # geth's default --miner.gasprice: a lower tip is never mined
MAX_FEE_WEI = 10**12  # far above any base fee these runs reach; only gasUsed x price is paid
# geth refuses a transaction whose gas x maxFeePerGas exceeds --rpc.txfeecap (default 1
# ether): a batch's max fee is lowered to fit under it (still far above the base fee).
TX_FEE_CAP_WEI = 10**18 * 9 // 10
MODES = ("batch", "single")  # furnish(K records) | report(one record)


class Signer:
    """EIP-1559 transactions signed with coincurve (libsecp256k1) and rlp, the same bytes as
    eth_account's `sign_transaction` (checked on a sample at start), about 5x faster; without
    coincurve, eth_account signs (slower pre-signing, same transactions)."""

    def __init__(self, key_hex: str, chain_id: int, to: str, gas: int) -> None:
        self.key = coincurve.PrivateKey(bytes(HexBytes(key_hex))) if coincurve else None
        self.account = Account.from_key(key_hex)
        self.chain_id = chain_id
        self.to = bytes(HexBytes(to))
        self.to_hex = to
        self.gas = gas
        self.max_fee = min(MAX_FEE_WEI, TX_FEE_CAP_WEI // gas)

    def sign(self, nonce: int, data: bytes) -> tuple[bytes, str]:
        """(raw transaction, 0x hash)."""
        if self.key is None:
            signed = self.account.sign_transaction(self._tx(nonce, data))
            return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
        fields: list[Any] = [
            self.chain_id, nonce, TIP_WEI, self.max_fee, self.gas, self.to, 0, data, [],
        ]  # fmt: skip
        sig = self.key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        raw = b"\x02" + rlp.encode([*fields, v, r, s])
        return raw, "0x" + keccak(raw).hex()

    def _tx(self, nonce: int, data: bytes) -> dict[str, Any]:
        return {
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "gas": self.gas,
            "maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": TIP_WEI, "value": 0,
            "data": data, "to": self.to_hex,
        }  # fmt: skip

    def check_against_eth_account(self, data: bytes) -> None:
        ours = self.sign(7, data)
        theirs = self.account.sign_transaction(self._tx(7, data))
        if ours[0] != bytes(theirs.raw_transaction):
            raise SystemExit("the fast signer disagrees with eth_account: refusing to run")


# -- calldata -------------------------------------------------------------------------


def encode_writes(
    contract: Any, mode: str, furnisher: str, record: Record, subjects: Sequence[bytes]
) -> bytes:
    """The transaction's calldata through the contract's ABI: `report(subject, furnisher,
    accountRef, record)` (single: one subject) or `furnish(entries)` (batch: one entry of
    subject, accountRef and record per subject, the same record and account reference)."""
    ref, packed = account_ref_bytes(record.account_ref), record_to_contract(record)
    if mode == "single":
        (subject,) = subjects
        args: list[Any] = [subject, furnisher, ref, packed]
        return bytes(HexBytes(contract.encode_abi("report", args=args)))
    entries = b"".join(s + ref + packed for s in subjects)
    return bytes(HexBytes(contract.encode_abi("furnish", args=[entries])))


def subject_offsets(mode: str, k: int) -> tuple[int, ...]:
    """Where each subject is in `encode_writes`' calldata (checked against the ABI at start).

    report(bytes32 subject, ...): the first argument, static, right after the selector;
    furnish(bytes entries): selector, the offset word and the length word, then the entries
    (ENTRY_BYTES each, the subject first)."""
    if mode == "single":
        return (4,)
    return tuple(4 + 32 + 32 + j * ENTRY_BYTES for j in range(k))


def subject_calldata(template: bytes, offsets: Sequence[int], subjects: Sequence[bytes]) -> bytes:
    """`template` with `subjects` written at `offsets` (32 bytes each)."""
    data = bytearray(template)
    for at, subject in zip(offsets, subjects, strict=True):
        data[at : at + 32] = subject
    return bytes(data)


# -- the banks' lanes -----------------------------------------------------------------


@dataclass
class Lane:
    """One bank's writes: its key, its own node, its next nonce, its calldata template."""

    bank: str
    node: str
    url: str
    address: str
    signer: Signer
    template: bytes  # report or furnish calldata; the subjects are patched in
    offsets: tuple[int, ...]  # where each of the K subjects is in `template`
    secret: str
    next_nonce: int
    others: list[str] = field(default_factory=list)  # the bank's other nodes' RPC URLs
    serial: int = 0  # subjects written so far

    @property
    def k(self) -> int:
        """Records per transaction."""
        return len(self.offsets)

    @property
    def id_part(self) -> str:
        """The bank in the made-up national IDs (letters and digits only, as normalized)."""
        return "".join(c for c in self.bank.upper() if c.isalnum())


@dataclass
class Batch:
    """A lane's pre-signed transactions for one step: due times, JSON-RPC items, hashes."""

    lane: Lane
    offsets: list[float]
    items: list[str]
    hashes: list[str]
    sent_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    failed: set[int] = field(default_factory=set)
    max_lag: float = 0.0


def presign(lanes: Sequence[Lane], rate: float, seconds: float, tag: str) -> list[Batch]:
    """`rate` in records/s: round(rate x seconds / K) transactions (at least one per lane),
    transaction i due at i x K / rate, lanes alternating; each record a new subject.
    Consumes nonces and subjects."""
    k = lanes[0].k
    total = max(len(lanes), round(rate * seconds / k))
    batches = [Batch(lane, [], [], []) for lane in lanes]
    for i in range(total):
        b = batches[i % len(lanes)]
        lane = b.lane
        key = lane.secret.encode()
        prefix = f"B{tag}{lane.id_part}".upper()  # as `pseudonym_fast`: a normalized ID
        subjects = [
            hmac.digest(key, f"{prefix}{lane.serial + j}".encode(), "sha256") for j in range(k)
        ]
        lane.serial += k
        data = subject_calldata(lane.template, lane.offsets, subjects)
        raw, tx_hash = lane.signer.sign(lane.next_nonce, data)
        lane.next_nonce += 1
        b.offsets.append(i * k / rate)
        b.items.append(
            f'{{"jsonrpc":"2.0","id":{len(b.items)},"method":"eth_sendRawTransaction",'
            f'"params":["0x{raw.hex()}"]}}'
        )
        b.hashes.append(tx_hash)
    for b in batches:
        b.sent_at = [math.nan] * len(b.items)
    return batches


def pseudonym_fast(secret: str, national_id: str) -> bytes:
    """The SDK's pseudonym (HMAC-SHA256 of the normalized ID) of an ID that is already
    normalized (letters and digits); `Run._lane` checks it against the SDK at start."""
    return hmac.new(secret.encode(), national_id.upper().encode(), hashlib.sha256).digest()
