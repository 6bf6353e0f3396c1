"""The Clique genesis builder: golden bytes, extraData layout, and every rejected spec.

The golden files under golden/ were generated once and checked by eye. To regenerate
them after an intended change: POACTL_REGEN_GOLDEN=1 pytest tests/unit/test_genesis.py,
then review the diff before committing.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from genesis import (
    GAS_LIMIT_MAX,
    CliqueSpec,
    InvalidGenesisSpec,
    build_genesis,
    canonical_json,
    clique_extra_data,
)

GOLDEN = Path(__file__).parent / "golden"

A = "0x7e5f4552091A69125d5DFcD7B8C2659029395bDF"
B = "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"
C = "0x1111111111111111111111111111111111111111"
D = "0xA0a0a0A0A0A0a0a0A0A0a0A0a0A0a0A0A0A0a0a0"
E = "0x0B0b0b0b0B0B0B0B0b0b0b0b0B0B0B0B0B0b0B0b"
F = "0xFFfffFFfFFfffFfFffFFfFfFfFffFfffFFFFFf01"

SPECS: dict[str, CliqueSpec] = {
    "single_signer": CliqueSpec(chain_id=1337, signers=[A]),
    "three_signers_alloc_vanity": CliqueSpec(
        chain_id=7272,
        signers=[B, C, D],  # not in byte order on purpose
        alloc={C: 1000 * 10**18, B.lower(): 1},
        vanity=b"poactl consortium",
    ),
    "four_signers_edges": CliqueSpec(
        chain_id=2**63 - 1,
        signers=[F.lower(), E, "0x" + D[2:].upper(), C],  # mixed spellings
        period=15,
        epoch=100,
        gas_limit=5000,
        vanity=b"V" * 32,
    ),
}

LONDON_FORKS = [
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
]


def _expected_extra(signers: list[str], vanity: bytes) -> str:
    """extraData built independently: vanity padded to 32, sorted signers, 65 zeros."""
    raw = sorted(bytes.fromhex(s[2:]) for s in signers)
    return "0x" + (vanity.ljust(32, b"\0") + b"".join(raw) + bytes(65)).hex()


# -- golden files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_genesis_matches_golden_file(name: str) -> None:
    produced = canonical_json(build_genesis(SPECS[name]))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("POACTL_REGEN_GOLDEN"):
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden_file_has_the_clique_layout(name: str) -> None:
    """Check the golden files themselves, so a wrong golden cannot hide a wrong builder."""
    spec = SPECS[name]
    doc = json.loads((GOLDEN / f"{name}.json").read_text())
    config = doc["config"]

    assert config["chainId"] == spec.chain_id
    assert config["clique"] == {"period": spec.period, "epoch": spec.epoch}
    assert {k: config[k] for k in LONDON_FORKS} == dict.fromkeys(LONDON_FORKS, 0)
    assert set(config) == {"chainId", "clique", *LONDON_FORKS}
    for later in ("shanghaiTime", "cancunTime", "terminalTotalDifficulty", "ethash"):
        assert later not in config

    assert doc["extraData"] == _expected_extra(list(spec.signers), spec.vanity)
    assert int(doc["gasLimit"], 16) == spec.gas_limit
    assert doc["difficulty"] == "0x1"
    assert doc["alloc"] == {addr.lower(): {"balance": hex(wei)} for addr, wei in spec.alloc.items()}


def test_canonical_json_is_sorted_indented_and_ends_with_newline() -> None:
    text = canonical_json(build_genesis(SPECS["single_signer"])).decode()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "alloc": {},\n  "coinbase": ')
    top_keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert top_keys == sorted(top_keys)


# -- extraData ------------------------------------------------------------------------


def test_signer_order_does_not_change_the_bytes() -> None:
    signers = [A, B, C, D, E, F]
    reference = canonical_json(build_genesis(CliqueSpec(chain_id=9, signers=signers)))
    rng = random.Random(42)
    for _ in range(10):
        shuffled = signers[:]
        rng.shuffle(shuffled)
        spec = CliqueSpec(chain_id=9, signers=shuffled)
        assert canonical_json(build_genesis(spec)) == reference


def test_address_spelling_does_not_change_the_bytes() -> None:
    checksummed = build_genesis(CliqueSpec(chain_id=9, signers=[A, B]))
    lowered = build_genesis(CliqueSpec(chain_id=9, signers=[A.lower(), B.lower()]))
    assert canonical_json(checksummed) == canonical_json(lowered)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_extra_data_length_is_vanity_signers_seal(n: int) -> None:
    signers = [A, B, C, D, E, F][:n]
    extra = clique_extra_data(signers)
    assert extra.startswith("0x")
    assert len(bytes.fromhex(extra[2:])) == 32 + 20 * n + 65


def test_extra_data_signers_are_sorted_by_byte_value() -> None:
    raw = bytes.fromhex(clique_extra_data([F, C, E, D])[2:])
    body = raw[32:-65]
    addresses = [to_checksum_address(body[i : i + 20]) for i in range(0, len(body), 20)]
    assert addresses == [E, C, D, F]  # 0x0b.. < 0x11.. < 0xa0.. < 0xff..
    assert raw[-65:] == bytes(65)


def test_vanity_is_right_padded_to_32_bytes() -> None:
    raw = bytes.fromhex(clique_extra_data([A], vanity=b"bank")[2:])
    assert raw[:32] == b"bank" + bytes(28)


# -- rejected specs -------------------------------------------------------------------

ADDRESS_ALLOWED = "20-byte hex address"
_BAD_CHECKSUM = A[:-1] + A[-1].lower()  # ...bDF -> ...bDf: mixed case, wrong EIP-55
assert _BAD_CHECKSUM != A and _BAD_CHECKSUM.lower() == A.lower()


def _spec(**changes: object) -> CliqueSpec:
    fields: dict[str, object] = {"chain_id": 7272, "signers": [A, B]}
    fields.update(changes)
    return CliqueSpec(**fields)  # type: ignore[arg-type]


INVALID = [
    pytest.param(_spec(signers=[]), "signers", "non-empty list", id="no-signers"),
    pytest.param(_spec(signers=[A, B, A]), "signers[2]", "listed once", id="duplicate-signer"),
    pytest.param(
        _spec(signers=[A.lower(), "0x" + A[2:].upper()]),
        "signers[1]",
        "listed once",
        id="duplicate-signer-differing-in-case",
    ),
    pytest.param(_spec(signers=[A, "0x1234"]), "signers[1]", ADDRESS_ALLOWED, id="short-address"),
    pytest.param(_spec(signers=["0x" + "g" * 40]), "signers[0]", ADDRESS_ALLOWED, id="non-hex"),
    pytest.param(_spec(signers=[_BAD_CHECKSUM]), "signers[0]", "EIP-55", id="bad-checksum"),
    pytest.param(_spec(signers=[A, None]), "signers[1]", ADDRESS_ALLOWED, id="not-a-string"),
    pytest.param(_spec(period=0), "period", "from 1 to 3600", id="period-0"),
    pytest.param(_spec(epoch=0), "epoch", "from 1 to", id="epoch-0"),
    pytest.param(_spec(gas_limit=4999), "gas_limit", "from 5000 to", id="gas-limit-4999"),
    pytest.param(_spec(gas_limit=2**63), "gas_limit", f"to {GAS_LIMIT_MAX}", id="gas-limit-2**63"),
    pytest.param(_spec(chain_id=0), "chain_id", "from 1 to", id="chain-id-0"),
    pytest.param(_spec(chain_id=True), "chain_id", "an integer", id="bool-chain-id"),
    pytest.param(_spec(period=True), "period", "an integer", id="bool-period"),
    pytest.param(_spec(vanity=b"x" * 33), "vanity", "at most 32 bytes", id="vanity-33-bytes"),
    pytest.param(_spec(vanity="poactl"), "vanity", "32 bytes", id="vanity-as-str"),
    pytest.param(_spec(vanity=""), "vanity", "32 bytes", id="vanity-empty-str"),
    pytest.param(
        _spec(alloc={D.lower(): 1, "0x" + D[2:].upper(): 2}),
        f"alloc[0x{D[2:].upper()}]",
        "listed once",
        id="duplicate-alloc",
    ),
    pytest.param(
        _spec(alloc={B.lower(): 1, B: 2}), f"alloc[{B}]", "listed once", id="duplicate-alloc-case"
    ),
    pytest.param(_spec(alloc={"0xnope": 1}), "alloc[0xnope]", ADDRESS_ALLOWED, id="alloc-address"),
    pytest.param(_spec(alloc={C: -1}), f"alloc[{C}]", "from 0 to", id="alloc-negative-balance"),
]


@pytest.mark.parametrize(("spec", "field", "allowed"), INVALID)
def test_invalid_spec_names_field_and_what_is_allowed(
    spec: CliqueSpec, field: str, allowed: str
) -> None:
    with pytest.raises(InvalidGenesisSpec) as caught:
        build_genesis(spec)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    assert "is not allowed; expected" in message
    assert allowed in message


def test_invalid_spec_is_a_value_error_carrying_the_value() -> None:
    with pytest.raises(ValueError, match="period: 0 is not allowed") as caught:
        build_genesis(_spec(period=0))
    assert isinstance(caught.value, InvalidGenesisSpec)
    assert caught.value.value == 0
