"""Who sealed a Clique block, read from the block itself (no `clique` API needed).

A Clique block's signer is the address that recovers from the 65-byte seal at the end
of its extraData over the header's seal hash: keccak256 of the header's RLP with that
seal cut off (geth's `clique.SealHash`). Anyone who can read blocks over plain JSON-RPC
(`eth_getBlockByNumber`, which every balancer passes) can tell who sealed them; the
monitor does, from its bank's node. In-turn blocks have difficulty 2, out-of-turn 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_keys import keys as eth_keys  # type: ignore[attr-defined]
from eth_utils.crypto import keccak

SEAL_BYTES = 65
IN_TURN = 2
_FIELDS = (
    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
    "logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData",
    "mixHash", "nonce",
)  # fmt: skip
_INTS = frozenset({"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas"})


def _value(block: Mapping[str, Any], name: str) -> Any:
    raw = block[name]
    if name in _INTS:
        return int(raw, 16) if isinstance(raw, str) else int(raw)
    text = raw if isinstance(raw, str) else "0x" + bytes(raw).hex()
    return bytes.fromhex(text.removeprefix("0x"))


def seal_hash(block: Mapping[str, Any]) -> bytes:
    """Clique's seal hash of a block as JSON-RPC returns it (hex strings)."""
    values = [_value(block, f) for f in _FIELDS]
    values[12] = values[12][:-SEAL_BYTES]  # extraData without the seal
    if block.get("baseFeePerGas") is not None:
        values.append(_value(block, "baseFeePerGas"))
    return bytes(keccak(rlp.encode(values)))


def block_signer(block: Mapping[str, Any]) -> str | None:
    """The checksummed address that sealed `block`; None for the genesis or a block
    whose seal does not recover."""
    extra = _value(block, "extraData")
    if _value(block, "number") == 0 or len(extra) < SEAL_BYTES:
        return None
    seal = extra[-SEAL_BYTES:]
    v = seal[64] - 27 if seal[64] >= 27 else seal[64]
    try:
        signature = eth_keys.Signature(seal[:64] + bytes([v]))
        public = signature.recover_public_key_from_msg_hash(seal_hash(block))
    except Exception:  # a malformed seal: no signer to name
        return None
    return str(public.to_checksum_address())
