"""Validator keystores, password files, node keys and enode URLs."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_keys import keys as eth_keys

from orchestrator.boundaries import Secret
from orchestrator.geth.keys import (
    FOLLOWER_PREFIX,
    create_node_key,
    enode_id,
    enode_url,
    follower_address,
    remove_identity_keystores,
    write_identity_keystore,
)

# secp256k1 generator point G: the public key of private key 1 (SEC 2, section 2.4.1).
G_X = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
G_Y = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"

KEY = Secret("0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PASSWORD = Secret("a-long-random-password-from-the-vault-0123456789")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_identity_keystore_is_owner_only_and_decrypts_to_the_key(tmp_path: Path) -> None:
    path = write_identity_keystore(tmp_path / "keystore", KEY, PASSWORD)
    assert _mode(path) == 0o600
    doc = json.loads(path.read_text())
    assert doc["version"] == 3  # Web3 Secret Storage v3
    assert doc["crypto"]["kdf"] == "scrypt"
    address = Account.from_key(KEY.value).address
    assert doc["address"].lower() == address[2:].lower()
    assert path.name.endswith(address[2:].lower())
    assert bytes(Account.decrypt(doc, PASSWORD.value)).hex() == KEY.value[2:]
    with pytest.raises(ValueError):
        Account.decrypt(doc, "not-the-password")


def test_identity_keystore_leaves_no_plaintext_and_no_temp_file(tmp_path: Path) -> None:
    write_identity_keystore(tmp_path / "keystore", KEY, PASSWORD)
    write_identity_keystore(tmp_path / "keystore", KEY, PASSWORD)  # rewritten in place
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1
    content = files[0].read_bytes().lower()
    assert KEY.value[2:].encode() not in content
    assert bytes.fromhex(KEY.value[2:]) not in content
    assert PASSWORD.value.encode() not in content


def test_removing_identities_keeps_the_follower_key(tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    follower = follower_address(keystore)
    path = write_identity_keystore(keystore, KEY, PASSWORD)
    assert remove_identity_keystores(keystore) == [path.name]
    (left,) = keystore.iterdir()
    assert left.name.startswith(FOLLOWER_PREFIX)
    assert follower_address(keystore) == follower  # found again, not made anew
    assert remove_identity_keystores(tmp_path / "missing") == []


def test_follower_keys_are_random_and_owner_only(tmp_path: Path) -> None:
    a = follower_address(tmp_path / "a")
    b = follower_address(tmp_path / "b")
    assert a != b
    (file_a,) = (tmp_path / "a").iterdir()
    assert _mode(file_a) == 0o600
    assert Account.from_key(KEY.value).address not in (a, b)


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret} {secret!r} {[secret]} { ({'k': secret}) }"
    assert secret.value == "hunter2-very-secret"


def test_node_key_is_owner_only_hex(tmp_path: Path) -> None:
    nodekey = tmp_path / "geth" / "nodekey"
    create_node_key(nodekey)
    assert _mode(nodekey) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", nodekey.read_text())


def test_enode_url_of_a_generated_node_key(tmp_path: Path) -> None:
    nodekey = tmp_path / "nodekey"
    create_node_key(nodekey)
    url = enode_url(nodekey, "127.0.0.1", 30303)
    found = re.fullmatch(r"enode://([0-9a-f]{128})@127\.0\.0\.1:30303", url)
    assert found, url
    public = eth_keys.PrivateKey(bytes.fromhex(nodekey.read_text())).public_key
    assert found.group(1) == public.to_bytes().hex()


def test_enode_id_matches_a_known_vector(tmp_path: Path) -> None:
    """Private key 1 has the generator point as public key: checked without eth_keys."""
    nodekey = tmp_path / "nodekey"
    nodekey.write_text("00" * 31 + "01\n")
    assert enode_id(nodekey) == G_X + G_Y
    assert enode_url(nodekey, "10.0.0.5", 30311) == f"enode://{G_X}{G_Y}@10.0.0.5:30311"
