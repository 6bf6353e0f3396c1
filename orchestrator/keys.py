"""Node identities: the validator's signing key and the node's p2p key.

The validator key exists only as geth's encrypted keystore (Web3 Secret Storage v3)
plus a random password in a file readable by the owner alone; no plaintext key file is
written. Because the password is 256 random bits, a light scrypt work factor loses no
security (the work factor protects weak passwords) and keeps geth's unlock fast.

The p2p node key is geth's own `nodekey` file (geth writes one itself when absent); we
create it first so every node's enode is known before any node starts, which lets
peers be static and discovery stay off.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_keys import keys as eth_keys  # type: ignore[attr-defined]
from eth_utils.address import to_checksum_address

from orchestrator.boundaries import Secret
from orchestrator.errors import NodeError

KEYSTORE_SCRYPT_N = 1 << 12  # geth's "light" scrypt work factor


def _write_private(path: Path, data: str) -> None:
    """Create `path` with mode 0600 from the start; refuse to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def create_validator_key(keystore_dir: Path, password_file: Path) -> str:
    """Make a new signing key, store it encrypted; return its checksummed address."""
    account = Account.create()
    password = Secret(secrets.token_urlsafe(32))
    keystore = Account.encrypt(
        account.key, password.value, kdf="scrypt", iterations=KEYSTORE_SCRYPT_N
    )
    address: str = account.address
    _write_private(password_file, password.value)
    _write_private(keystore_dir / f"UTC--poactl--{address[2:].lower()}", json.dumps(keystore))
    return address


def keystore_address(keystore_dir: Path) -> str:
    """The address of the single key in a node's keystore."""
    files = sorted(keystore_dir.glob("UTC--*")) if keystore_dir.is_dir() else []
    if len(files) != 1:
        raise NodeError(
            f"expected exactly one key in the keystore, found {len(files)}",
            obj=str(keystore_dir),
            hint="the state dir is damaged; restore it from backup or `poactl destroy` it",
        )
    raw = str(json.loads(files[0].read_text())["address"])
    return to_checksum_address("0x" + raw.removeprefix("0x"))


def create_node_key(nodekey_file: Path) -> None:
    """Write geth's p2p node key (hex, no 0x) with mode 0600."""
    _write_private(nodekey_file, secrets.token_bytes(32).hex())


def enode_id(nodekey_file: Path) -> str:
    """The 128-hex-digit public key that names this node in an enode URL."""
    private = eth_keys.PrivateKey(bytes.fromhex(nodekey_file.read_text().strip()))
    return str(private.public_key.to_bytes().hex())


def enode_url(nodekey_file: Path, host: str, port: int) -> str:
    return f"enode://{enode_id(nodekey_file)}@{host}:{port}"
