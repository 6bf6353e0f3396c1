"""Build a Clique proof-of-authority genesis for geth 1.13.

extraData is 32 vanity bytes, the signer addresses sorted by byte value, then 65 zero
bytes for the (absent) seal. Forks are enabled up to London only: Clique in geth 1.13
refuses Shanghai and Cancun. The output is canonical JSON (sorted keys, fixed layout),
so every member that builds from the same spec publishes byte-identical genesis files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import is_checksum_address, is_hex_address

VANITY_BYTES = 32
SEAL_BYTES = 65
GAS_LIMIT_MIN = 5_000  # geth params.MinGasLimit
GAS_LIMIT_MAX = 2**63 - 1  # geth params.MaxGasLimit
CHAIN_ID_MAX = 2**63 - 1
EPOCH_DEFAULT = 30_000

# Every fork geth 1.13 knows up to London, all active from block 0.
_FORKS_TO_LONDON = (
    "homesteadBlock",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "muirGlacierBlock",
    "berlinBlock",
    "londonBlock",
    "arrowGlacierBlock",
    "grayGlacierBlock",
)


class InvalidGenesisSpec(ValueError):
    """A spec field is not allowed; names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: object, allowed: str) -> None:
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field_name}: {value!r} is not allowed; expected {allowed}")


@dataclass(frozen=True)
class Predeployed:
    """A contract present from block 0: its runtime code and its storage, slot to value."""

    code: str  # runtime bytecode, 0x-prefixed
    storage: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CliqueSpec:
    """What a Clique genesis is made of. `alloc` maps address to balance in wei;
    `contracts` maps address to a contract written into the genesis state."""

    chain_id: int
    signers: Sequence[str]
    period: int = 2
    epoch: int = EPOCH_DEFAULT
    gas_limit: int = 30_000_000
    alloc: Mapping[str, int] = field(default_factory=dict)
    vanity: bytes = b""
    contracts: Mapping[str, Predeployed] = field(default_factory=dict)


def _address(field_name: str, value: object) -> bytes:
    allowed = "a 20-byte hex address 0x… (mixed case only with a valid EIP-55 checksum)"
    if not isinstance(value, str) or not is_hex_address(value):
        raise InvalidGenesisSpec(field_name, value, allowed)
    body = value[2:] if value.lower().startswith("0x") else value
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise InvalidGenesisSpec(field_name, value, allowed)
    return bytes.fromhex(body)


def _positive_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidGenesisSpec(field_name, value, f"an integer from {low} to {high}")
    return value


def _sorted_signers(signers: Sequence[str]) -> list[bytes]:
    if isinstance(signers, str) or not signers:
        raise InvalidGenesisSpec("signers", signers, "a non-empty list of addresses")
    raw = [_address(f"signers[{i}]", s) for i, s in enumerate(signers)]
    seen: set[bytes] = set()
    for i, addr in enumerate(raw):
        if addr in seen:
            raise InvalidGenesisSpec(f"signers[{i}]", signers[i], "each signer address listed once")
        seen.add(addr)
    return sorted(raw)


def clique_extra_data(signers: Sequence[str], vanity: bytes = b"") -> str:
    """extraData: vanity (right-padded to 32 bytes) + sorted signers + 65 zero bytes."""
    if not isinstance(vanity, bytes) or len(vanity) > VANITY_BYTES:
        raise InvalidGenesisSpec("vanity", vanity, f"at most {VANITY_BYTES} bytes")
    body = vanity.ljust(VANITY_BYTES, b"\0") + b"".join(_sorted_signers(signers))
    return "0x" + (body + b"\0" * SEAL_BYTES).hex()


def build_genesis(spec: CliqueSpec) -> dict[str, Any]:
    """The genesis as a JSON-ready dict; validates every field of `spec`."""
    chain_id = _positive_int("chain_id", spec.chain_id, 1, CHAIN_ID_MAX)
    period = _positive_int("period", spec.period, 1, 3600)
    epoch = _positive_int("epoch", spec.epoch, 1, 2**32)
    gas_limit = _positive_int("gas_limit", spec.gas_limit, GAS_LIMIT_MIN, GAS_LIMIT_MAX)
    alloc: dict[str, dict[str, Any]] = {}
    for address, balance in spec.alloc.items():
        key = "0x" + _address(f"alloc[{address}]", address).hex()
        if key in alloc:
            raise InvalidGenesisSpec(f"alloc[{address}]", address, "each address listed once")
        wei = _positive_int(f"alloc[{address}]", balance, 0, 2**256 - 1)
        alloc[key] = {"balance": hex(wei)}
    for address, contract in spec.contracts.items():
        key = "0x" + _address(f"contracts[{address}]", address).hex()
        entry = alloc.setdefault(key, {"balance": "0x0"})
        if "code" in entry or not isinstance(contract.code, str) or len(contract.code) < 4:
            raise InvalidGenesisSpec(f"contracts[{address}]", address, "one runtime code each")
        entry["code"] = contract.code
        if contract.storage:
            entry["storage"] = {
                f"0x{slot:064x}": f"0x{value:064x}"
                for slot, value in sorted(contract.storage.items())
                if value
            }
    config: dict[str, Any] = {"chainId": chain_id}
    config.update(dict.fromkeys(_FORKS_TO_LONDON, 0))
    config["clique"] = {"period": period, "epoch": epoch}
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "extraData": clique_extra_data(spec.signers, spec.vanity),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": "0x" + "00" * 32,
        "coinbase": "0x" + "00" * 20,
        "alloc": alloc,
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }


def canonical_json(genesis: Mapping[str, Any]) -> bytes:
    """Sorted keys, two-space indent, trailing newline: stable bytes for hashing/diffing."""
    return (json.dumps(genesis, sort_keys=True, indent=2) + "\n").encode()
