"""The committed contract artifact: current with its source, built for london, and the
SDK's decoding of every custom error it declares."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector

from orchestrator.artifacts import CONTRACTS, SOLC_SETTINGS, load_artifact
from orchestrator.credit import NonceAllocator, decode_revert
from orchestrator.credit.contract import HINTS, error_names
from orchestrator.credit.records import ENTRY_BYTES, RECORD_BYTES, RECORD_LAYOUT

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifact_matches_the_source(name: str) -> None:
    artifact = load_artifact(name)
    digest = hashlib.sha256((ROOT / "contracts" / f"{name}.sol").read_bytes()).hexdigest()
    assert artifact.source_sha256 == digest, (
        f"contracts/{name}.sol changed since the artifact was built; "
        "run .venv/bin/python scripts/build_contracts.py and commit the artifact"
    )


@pytest.mark.parametrize("name", CONTRACTS)
def test_artifact_was_built_with_the_pinned_compiler_for_london(name: str) -> None:
    artifact = load_artifact(name)
    pinned = json.loads((ROOT / "scripts" / "tools" / "package.json").read_text())
    assert artifact.solc_version.startswith(pinned["dependencies"]["solc"] + "+commit.")
    assert artifact.settings == SOLC_SETTINGS
    assert artifact.settings["evmVersion"] == "london"
    source = (ROOT / "contracts" / f"{name}.sol").read_text()
    assert "pragma solidity " + pinned["dependencies"]["solc"] + ";" in source


def _opcodes(code: bytes) -> list[int]:
    """Opcodes of runtime code, skipping PUSH data and the CBOR metadata trailer."""
    code = code[: len(code) - 2 - int.from_bytes(code[-2:], "big")]
    ops, i = [], 0
    while i < len(code):
        op = code[i]
        ops.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops


@pytest.mark.parametrize("name", CONTRACTS)
def test_runtime_code_has_no_push0(name: str) -> None:
    """PUSH0 (0x5f) is Shanghai; Clique in geth 1.13 runs london and would reject it."""
    artifact = load_artifact(name)
    ops = _opcodes(bytes.fromhex(artifact.deployed_bytecode[2:]))
    assert len(ops) > 1000
    assert 0x5F not in ops


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / ".tools/node/node_modules/solc").is_dir(),
    reason="needs node and solc-js (scripts/setup.sh)",
)
def test_build_reproduces_the_committed_artifact() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_contracts.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_sdk_record_layout_is_the_contracts() -> None:
    """The packed layout is contiguous, and the source documents the same offsets."""
    end = 0
    source = (ROOT / "contracts" / "CreditRegistry.sol").read_text()
    for name, offset, size in RECORD_LAYOUT:
        assert offset == end, name
        end += size
        first, *rest = name.split("_")
        assert f" {offset} {first}{''.join(p.title() for p in rest)}(" in source, name
    assert end == RECORD_BYTES == 66
    assert f"RECORD_BYTES = {RECORD_BYTES};" in source
    assert f"ENTRY_BYTES = {ENTRY_BYTES};" in source


# -- custom errors ----------------------------------------------------------------------


def test_every_custom_error_has_a_hint() -> None:
    assert set(error_names()) <= set(HINTS)
    assert len(error_names()) == 14


def _encoded(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def test_custom_errors_decode_with_names_and_plain_values() -> None:
    bank = "0x7e5f4552091A69125d5DFcD7B8C2659029395bDF"
    e = decode_revert(_encoded("NotMember(address)", ["address"], [bank]))
    assert e is not None and e.error == "NotMember"
    assert str(e).startswith(f"the registry refused: NotMember(account={bank})")
    assert "`poactl members`" in str(e)

    e = decode_revert(
        _encoded("InvalidCode(string,bytes2)", ["string", "bytes2"], ["accountStatus", b"99"])
    )
    assert e is not None and e.args_by_name == {"field": "'accountStatus'", "code": "'99'"}

    e = decode_revert(_encoded("NoOpenDispute(bytes2)", ["bytes2"], [b"\0\0"]))
    assert e is not None and e.args_by_name == {"code": "blank"}

    ref = b"R".ljust(32, b"\0")
    e = decode_revert(
        _encoded("StaleReport(bytes32,uint32,uint32)", ["bytes32", "uint32", "uint32"], [ref, 2, 1])
    )
    assert e is not None and {k: e.args_by_name[k] for k in ("stored", "given")} == {
        "stored": 2,
        "given": 1,
    }


def test_standard_reverts_and_unknown_data() -> None:
    e = decode_revert(_encoded("Error(string)", ["string"], ["no"]))
    assert e is not None and e.error == "Error" and "message='no'" in str(e)
    e = decode_revert(_encoded("Panic(uint256)", ["uint256"], [0x11]))
    assert e is not None and e.error == "Panic" and "0x11" in str(e)
    assert decode_revert(b"\x12\x34\x56\x78") is None
    assert decode_revert(function_signature_to_4byte_selector("NotMember(address)")) is None


# -- nonces -----------------------------------------------------------------------------


def test_nonce_allocator_is_contiguous_across_threads() -> None:
    fetched = []

    def fetch() -> int:
        fetched.append(1)
        return 7

    allocator = NonceAllocator(fetch)
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(250):
            n = allocator.allocate()
            with lock:
                got.append(n)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(7, 7 + 2000))
    assert len(fetched) == 1


def test_nonce_allocator_resyncs_and_restarts() -> None:
    node = [5]
    allocator = NonceAllocator(lambda: node[0])
    assert [allocator.allocate() for _ in range(3)] == [5, 6, 7]
    node[0] = 20  # someone else sent from this account
    allocator.resync()
    assert allocator.allocate() == 20
    node[0] = 3  # the node is behind our counter (our sends still in flight): keep ours
    allocator.resync()
    assert allocator.allocate() == 21
    allocator.invalidate()  # a send failed unanswered: restart from the node's count
    assert allocator.allocate() == 3
