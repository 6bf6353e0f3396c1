"""Node identities on disk: geth keystores and the node's p2p key.

A validator identity's key lives in the bank's vault. The agent that holds the
identity's lease writes it into geth's keystore encrypted (Web3 Secret Storage v3,
scrypt) with the identity's password from the same vault, and deletes the file when it
loses the lease; no plaintext key and no password file is ever written. Because the
password is 256 random bits, a light scrypt work factor loses no security and keeps
geth's unlock fast.

Every agent's geth also holds a *follower* key: a fresh key whose password is thrown
away at once. geth runs `--mine` with it as etherbase, so the node counts as synced and
accepts peers' blocks from its first second, yet it can never seal with it (nobody can
unlock it, and it is no Clique signer).

The p2p node key is geth's own `nodekey` file; we create it first so the node's enode
is known before geth starts.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keys import keys as eth_keys  # type: ignore[attr-defined]
from eth_utils.address import to_checksum_address

from orchestrator.boundaries import Secret
from orchestrator.statefile import write_bytes_atomic

KEYSTORE_SCRYPT_N = 1 << 12  # geth's "light" scrypt work factor


IDENTITY_PREFIX = "UTC--poactl--"
FOLLOWER_PREFIX = "UTC--poactl-follower--"


def _write_private(path: Path, data: str) -> None:
    """Create `path` with mode 0600 from the start; refuse to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def _encrypted(key: Any, password: str) -> str:
    return json.dumps(Account.encrypt(key, password, kdf="scrypt", iterations=KEYSTORE_SCRYPT_N))


def write_identity_keystore(keystore_dir: Path, key: Secret, password: Secret) -> Path:
    """Write `key` into geth's keystore, encrypted with `password`; all or nothing.

    The file appears under its final name only once complete (geth's keystore scanner
    skips names starting with a dot), so geth never sees a half-written key.
    """
    address = Account.from_key(key.value).address
    final = keystore_dir / f"{IDENTITY_PREFIX}{address[2:].lower()}"
    write_bytes_atomic(final, _encrypted(key.value, password.value).encode())
    return final


def remove_identity_keystores(keystore_dir: Path) -> list[str]:
    """Delete every validator identity's keystore file (the follower key stays)."""
    removed = []
    for path in keystore_dir.glob(f"{IDENTITY_PREFIX}*") if keystore_dir.is_dir() else []:
        path.unlink(missing_ok=True)
        removed.append(path.name)
    for stale in keystore_dir.glob(".*.tmp") if keystore_dir.is_dir() else []:
        stale.unlink(missing_ok=True)
    return removed


def follower_address(keystore_dir: Path) -> str:
    """The node's follower key (created on first use): an address that can never seal."""
    existing = sorted(keystore_dir.glob(f"{FOLLOWER_PREFIX}*")) if keystore_dir.is_dir() else []
    if existing:
        raw = str(json.loads(existing[0].read_text())["address"])
        return to_checksum_address("0x" + raw.removeprefix("0x"))
    account = Account.create()
    address: str = account.address
    _write_private(
        keystore_dir / f"{FOLLOWER_PREFIX}{address[2:].lower()}",
        _encrypted(account.key, secrets.token_urlsafe(32)),  # the password is discarded
    )
    return address


def create_node_key(nodekey_file: Path) -> None:
    """Write geth's p2p node key (hex, no 0x) with mode 0600."""
    _write_private(nodekey_file, secrets.token_bytes(32).hex())


def enode_id(nodekey_file: Path) -> str:
    """The 128-hex-digit public key that names this node in an enode URL."""
    private = eth_keys.PrivateKey(bytes.fromhex(nodekey_file.read_text().strip()))
    return str(private.public_key.to_bytes().hex())


def enode_url(nodekey_file: Path, host: str, port: int) -> str:
    return f"enode://{enode_id(nodekey_file)}@{host}:{port}"
