"""The Governance contract's founding state, written into the genesis storage.

The contract is live from block 0 with no deployer: its runtime code sits in the genesis
`alloc`, and so does the state its constructor would have made (the rules and the
founding members with their validators and writers). The slots come from solc's storage
layout (kept in the compiled artifact), so this module knows the variable names, not
their positions. Solidity's rules, as used here: a value type sits at (slot, byte
offset); a dynamic array keeps its length at its slot and element i at
keccak(slot) + i; a mapping keeps key k's value at keccak(pad32(k) . pad32(slot)); a
struct's members follow from its own slot. The tests compare this encoding with the
storage the constructor writes on a real geth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from genesis.clique import InvalidGenesisSpec, Predeployed, _address

# Where every poactl network keeps its Governance contract.
GOVERNANCE_ADDRESS = "0x000000000000000000000000000000000000c0DE"
NAME_BYTES = 32
DEFAULT_LIFETIME_BLOCKS = 43_200  # a day of 2 s blocks
DEFAULT_FLOOR = 2


@dataclass(frozen=True)
class Founder:
    """A founding member: its admin account, a short name, its validators and writers."""

    admin: str
    name: str
    validators: Sequence[str] = ()
    writers: Sequence[str] = ()


@dataclass(frozen=True)
class Rules:
    """Proposal lifetime in blocks, validators per member, and the consortium's floor.
    A cap of 0 means "the largest founder's count"."""

    lifetime_blocks: int = DEFAULT_LIFETIME_BLOCKS
    validator_cap: int = 0
    validator_floor: int = DEFAULT_FLOOR


def name_word(name: str) -> int:
    """A member name as the contract's bytes32: ASCII, left-aligned, zero-padded."""
    raw = name.encode("ascii", "strict") if name.isascii() else b""
    if not raw or len(raw) > NAME_BYTES or not name.isprintable():
        raise InvalidGenesisSpec("founders.name", name, "1 to 32 printable ASCII characters")
    return int.from_bytes(raw.ljust(NAME_BYTES, b"\0"), "big")


def _number(field_name: str, address: str) -> int:
    return int.from_bytes(_address(field_name, address), "big")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


class _Storage:
    """Slots being written, addressed by variable name through solc's layout."""

    def __init__(self, layout: Mapping[str, Any]) -> None:
        self.slots: dict[int, int] = {}
        self._vars = {v["label"]: v for v in layout["storage"]}
        self.types: Mapping[str, Any] = layout["types"]

    def put(self, slot: int, value: int, offset: int = 0, size: int = 32) -> None:
        if not 0 <= value < 1 << (8 * size):
            raise InvalidGenesisSpec("governance", value, f"a value of {size} bytes")
        self.slots[slot] = self.slots.get(slot, 0) | value << (8 * offset)

    def var(self, label: str) -> tuple[int, int, Mapping[str, Any]]:
        v = self._vars[label]
        return int(v["slot"]), int(v["offset"]), self.types[v["type"]]

    def member(self, struct: Mapping[str, Any], base: int, label: str) -> tuple[int, int, int]:
        """(slot, offset, size) of a struct member stored from slot `base`."""
        m = next(m for m in struct["members"] if m["label"] == label)
        return base + int(m["slot"]), int(m["offset"]), int(self.types[m["type"]]["numberOfBytes"])

    @staticmethod
    def mapping_slot(key: int, slot: int) -> int:
        return int.from_bytes(keccak(_word(key) + _word(slot)), "big")

    def push_addresses(self, slot: int, addresses: Sequence[int]) -> None:
        """A dynamic array of addresses (one per slot) stored at `slot`."""
        self.put(slot, len(addresses))
        first = int.from_bytes(keccak(_word(slot)), "big")
        for i, a in enumerate(addresses):
            self.put(first + i, a, size=20)


def _owners(founders: Sequence[Founder], admins: Sequence[int], label: str) -> dict[int, int]:
    """Account -> its member's admin, for each founder's `validators` or `writers`."""
    owners: dict[int, int] = {}
    for f, admin in zip(founders, admins, strict=True):
        for account in getattr(f, label):
            key = _number(f"{f.name}.{label}", account)
            if key in owners:
                raise InvalidGenesisSpec(f"{f.name}.{label}", account, f"each of the {label} once")
            owners[key] = admin
    return owners


def governance_storage(
    layout: Mapping[str, Any], founders: Sequence[Founder], rules: Rules
) -> dict[int, int]:
    """Slot -> value of the founding state; what the constructor would write."""
    if not founders:
        raise InvalidGenesisSpec("founders", founders, "at least one founding member")
    admins = [_number("founders.admin", f.admin) for f in founders]
    names = [name_word(f.name) for f in founders]
    if len(set(admins)) != len(admins) or len(set(names)) != len(names):
        raise InvalidGenesisSpec("founders", [f.name for f in founders], "distinct admins, names")
    cap = rules.validator_cap or max(len(f.validators) for f in founders)
    for f in founders:
        if len(f.validators) > cap:
            raise InvalidGenesisSpec(f"{f.name}.validators", len(f.validators), f"at most {cap}")
    owner = _owners(founders, admins, "validators")
    writer_owner = _owners(founders, admins, "writers")
    if len(owner) < rules.validator_floor:
        raise InvalidGenesisSpec(
            "validators", len(owner), f"at least the floor of {rules.validator_floor}"
        )

    s = _Storage(layout)
    for label, value in (
        ("proposalLifetime", rules.lifetime_blocks),
        ("validatorCap", cap),
        ("validatorFloor", rules.validator_floor),
    ):
        slot, offset, t = s.var(label)
        s.put(slot, value, offset, int(t["numberOfBytes"]))
    s.push_addresses(s.var("_admins")[0], admins)
    members_slot, _, members_type = s.var("_members")
    struct = s.types[members_type["value"]]
    for f, admin, name in zip(founders, admins, names, strict=True):
        base = s.mapping_slot(admin, members_slot)
        slot, offset, size = s.member(struct, base, "name")
        s.put(slot, name, offset, size)  # `since` stays 0 for founders
        for label, accounts in (("validators", f.validators), ("writers", f.writers)):
            keys = [_number(label, a) for a in accounts]
            s.push_addresses(s.member(struct, base, label)[0], keys)
    s.push_addresses(s.var("_validators")[0], list(owner))
    for label, owners in (("validatorOwner", owner), ("writerOwner", writer_owner)):
        slot = s.var(label)[0]
        for key, admin in owners.items():
            s.put(s.mapping_slot(key, slot), admin, size=20)
    return s.slots


def governance_contract(
    runtime_code: str,
    layout: Mapping[str, Any],
    founders: Sequence[Founder],
    rules: Rules | None = None,
) -> Predeployed:
    """The Governance contract as the genesis holds it at `GOVERNANCE_ADDRESS`."""
    return Predeployed(runtime_code, governance_storage(layout, founders, rules or Rules()))
