"""geth never holds a validator key: on running consortia, every sealing node refuses to
sign anything but its Clique headers, whoever asks over HTTP, and no file holds a key.

Two consortia of two banks with two validators each: the embedded default (`secrets`
custody, the banks' local vaults), and one whose bank-a keeps its keys in a Key Vault
(the emulator) in `keys` custody while bank-b keeps secrets there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_utils.address import to_checksum_address
from web3.types import RPCEndpoint

from orchestrator.config import VaultSettings
from orchestrator.geth.client import http_web3
from orchestrator.geth.clique import IN_TURN, block_signer
from orchestrator.geth.ipc import ipc_probe
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.names import validator_key_name
from tests.helpers.chain import keystore_files
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import consortium_yaml
from tests.services.keyvault_emulator import KeyVaultService

pytestmark = [pytest.mark.geth, pytest.mark.slow]


@pytest.fixture(scope="module")
def default(geth: str) -> Iterator[LocalConsortium]:
    with running_consortium(geth, consortium_yaml({"bank-a": 2, "bank-b": 2})) as local:
        yield local


def _post(url: str, method: str, *params: object) -> dict[str, object]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer: dict[str, object] = requests.post(url, json=body, timeout=10).json()
    return answer


def _signing_requests(signer: str) -> list[tuple[str, list[object]]]:
    """Each way to ask geth for a signature with `signer`'s key over HTTP. Gas and fees
    are given, so geth does not stop early at its own checks (a validator holds no
    ether) and really forwards the request to its signer."""
    tx = {
        "from": signer,
        "to": signer,
        "value": "0x0",
        "gas": "0x5208",
        "maxFeePerGas": "0x3b9aca00",
        "maxPriorityFeePerGas": "0x1",
        "nonce": "0x0",
        "chainId": hex(7272),
    }
    return [
        ("eth_sign", [signer, "0xdeadbeef"]),
        ("eth_signTransaction", [tx]),
        ("eth_sendTransaction", [tx]),
    ]


def test_every_sealer_refuses_to_sign_anything_but_a_block(default: LocalConsortium) -> None:
    sealers = default.signers()
    assert len(sealers) == 4
    for node, signer in sealers.items():
        url = default.load().node(node).rpc_url
        for method, params in _signing_requests(signer):
            answer = _post(url, method, *params)
            assert "result" not in answer, (node, method, answer)
            message = str(answer["error"]["message"])  # type: ignore[index]
            assert "poactl signer" in message, (node, method, message)
        # geth lists the held identity (from the signer), yet holds no key for it.
        accounts = _post(url, "eth_accounts")["result"]
        assert signer.lower() in [str(a).lower() for a in accounts]  # type: ignore[union-attr]


def test_no_keystore_and_no_plaintext_key_under_the_state_dir(default: LocalConsortium) -> None:
    consortium = default.load()
    for node in consortium.nodes:
        assert keystore_files(default, node.name) == []
    keys = [
        default.vault(member).get_secret(validator_key_name(member, i))
        for member in consortium.members()
        for i in range(2)
    ]
    needles = [k.value.removeprefix("0x").encode() for k in keys if k is not None]
    needles += [bytes.fromhex(n.decode()) for n in needles]
    assert len(needles) == 8
    for path in default.layout.root.rglob("*"):
        if path.is_file() and not path.is_socket():
            data = path.read_bytes().lower()
            assert not any(n in data for n in needles), f"a validator key is in {path}"


def test_in_keys_custody_the_vault_signs_and_no_file_holds_a_key(
    geth: str, keyvault_emulator: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = keyvault_emulator.emulator
    assert emulator is not None
    keyvault_emulator.use_identity(monkeypatch)  # the agents inherit it: managed identity
    text = consortium_yaml({"bank-a": 2, "bank-b": 2}).replace(
        "bank-a: {validators: 2, spares: 0, rpc_nodes: 0}",
        "bank-a: {validators: 2, spares: 0, rpc_nodes: 0, custody: keys}",
    )
    assert "custody: keys" in text
    before = emulator.sign_requests

    def vault(_member: str) -> VaultSettings:
        return VaultSettings(
            kind="azure",
            url=keyvault_emulator.vault_url,
            ca_file=Path(str(keyvault_emulator.connection_verify)),
            verify_challenge_resource=False,
        )

    with running_consortium(geth, text, vault=vault) as local:
        assert len(local.signers()) == 4  # `up` waited until every identity sealed
        assert emulator.sign_requests > before  # bank-a's blocks were signed in the vault
        scalars = [
            emulator._keys[validator_key_name("bank-a", i)].private.private_numbers()
            for i in range(2)
        ]
        needles = [n.private_value.to_bytes(32, "big") for n in scalars]
        needles += [n.hex().encode() for n in needles]
        for path in local.layout.root.rglob("*"):
            if path.is_file() and not path.is_socket():
                data = path.read_bytes().lower()
                assert not any(n in data for n in needles), f"a validator key is in {path}"
        for node in local.load().nodes:
            assert keystore_files(local, node.name) == []
        url = local.load().node("bank-a-1").rpc_url
        signer = local.signers()["bank-a-1"]
        for method, params in _signing_requests(signer):
            assert "poactl signer" in str(_post(url, method, *params)["error"])


def test_a_blocks_signer_is_read_from_the_block_as_clique_does(default: LocalConsortium) -> None:
    """`geth.clique.block_signer` (what the monitor uses over plain JSON-RPC) names the
    same signer as geth's own `clique_getSigner`, for in-turn and out-of-turn blocks."""
    node = "bank-a-1"
    w3 = http_web3(default.load().node(node).rpc_url)
    ipc = default.layout.node(node).ipc
    top = w3.eth.block_number
    assert top >= 4
    difficulties = set()
    for number in range(1, top + 1):
        block = w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), [hex(number), False])
        result = block["result"]
        difficulties.add(int(result["difficulty"], 16))
        expected = ipc_probe(ipc, "clique_getSigner", [hex(number)])
        assert block_signer(result) == to_checksum_address(expected), number
    assert IN_TURN in difficulties
