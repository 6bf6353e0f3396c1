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
from orchestrator.errors import NodeError
from orchestrator.keys import (
    create_node_key,
    create_validator_key,
    enode_id,
    enode_url,
    keystore_address,
)

# secp256k1 generator point G: the public key of private key 1 (SEC 2, section 2.4.1).
G_X = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
G_Y = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"


@pytest.fixture
def validator(tmp_path: Path) -> tuple[Path, Path, str]:
    keystore = tmp_path / "datadir" / "keystore"
    password = tmp_path / "password"
    address = create_validator_key(keystore, password)
    return keystore, password, address


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_one_keystore_file_and_one_password_file(
    tmp_path: Path, validator: tuple[Path, Path, str]
) -> None:
    keystore, password, _ = validator
    assert len(list(keystore.iterdir())) == 1
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 2
    assert password.relative_to(tmp_path) in files


def test_keystore_and_password_are_owner_only(validator: tuple[Path, Path, str]) -> None:
    keystore, password, _ = validator
    (key_file,) = keystore.iterdir()
    assert _mode(key_file) == 0o600
    assert _mode(password) == 0o600


def test_keystore_decrypts_with_the_password_to_the_returned_address(
    validator: tuple[Path, Path, str],
) -> None:
    keystore, password, address = validator
    (key_file,) = keystore.iterdir()
    doc = json.loads(key_file.read_text())
    assert doc["version"] == 3  # Web3 Secret Storage v3
    assert doc["crypto"]["kdf"] == "scrypt"
    assert doc["address"].lower() == address[2:].lower()
    key = Account.decrypt(doc, password.read_text())
    assert Account.from_key(key).address == address
    assert keystore_address(keystore) == address


def test_wrong_password_does_not_decrypt(validator: tuple[Path, Path, str]) -> None:
    keystore, _, _ = validator
    (key_file,) = keystore.iterdir()
    with pytest.raises(ValueError):
        Account.decrypt(json.loads(key_file.read_text()), "not-the-password")


def test_password_is_long_and_random(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    create_validator_key(a / "keystore", a / "password")
    create_validator_key(b / "keystore", b / "password")
    pa, pb = (a / "password").read_text(), (b / "password").read_text()
    assert pa != pb
    assert len(pa) >= 40


def test_private_key_is_in_no_file_in_plaintext(
    tmp_path: Path, validator: tuple[Path, Path, str]
) -> None:
    keystore, password, _ = validator
    (key_file,) = keystore.iterdir()
    key_hex = bytes(Account.decrypt(json.loads(key_file.read_text()), password.read_text())).hex()
    assert len(key_hex) == 64
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes().lower()
            assert key_hex.encode() not in content, path
            assert bytes.fromhex(key_hex) not in content, path


def test_existing_files_are_never_overwritten(validator: tuple[Path, Path, str]) -> None:
    keystore, password, _ = validator
    before = password.read_text()
    with pytest.raises(FileExistsError):
        create_validator_key(keystore, password)
    assert password.read_text() == before
    assert len(list(keystore.iterdir())) == 1


def test_keystore_address_requires_exactly_one_key(
    tmp_path: Path, validator: tuple[Path, Path, str]
) -> None:
    keystore, _, _ = validator
    (keystore / "UTC--second").write_text("{}")
    with pytest.raises(NodeError, match="found 2"):
        keystore_address(keystore)
    with pytest.raises(NodeError, match="found 0"):
        keystore_address(tmp_path / "empty")


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
