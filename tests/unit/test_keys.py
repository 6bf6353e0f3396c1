"""The node's own identities: its keyless follower etherbase, node keys, enode URLs."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils.address import to_checksum_address

from orchestrator.boundaries import Secret
from orchestrator.geth.keys import (
    address_of_public_key,
    create_node_key,
    enode_id,
    enode_url,
    follower_address,
)

# secp256k1 generator point G: the public key of private key 1 (SEC 2, section 2.4.1).
G_X = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
G_Y = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"

KEY = Secret("0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_follower_is_keyless_stable_and_per_node() -> None:
    """The etherbase of a node without an identity: the same on every start, distinct
    per node, and derived from a hash, so no key for it exists anywhere."""
    a = follower_address("bank-a-1")
    assert a == follower_address("bank-a-1")
    assert a != follower_address("bank-a-2")
    assert a == to_checksum_address(a)
    assert Account.from_key(KEY.value).address != a


def test_address_of_a_public_key() -> None:
    public = eth_keys.PrivateKey(bytes.fromhex(KEY.value[2:])).public_key
    assert address_of_public_key(public.to_bytes()) == Account.from_key(KEY.value).address


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
