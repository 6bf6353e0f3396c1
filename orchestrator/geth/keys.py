"""The node's own identities: its p2p node key, and the address it mines as when it
holds no validator identity.

geth runs with an external signer (`--signer`, the agent): its keystore is off and it
holds no validator key. It still runs `--mine`, so that it counts as synced and accepts
peers' blocks from its first second, with a *follower* etherbase: an address derived
from the node's name that has no key at all, so nobody can ever sign for it (and it is
no Clique signer).

The p2p node key is geth's own `nodekey` file; we create it first so the node's enode
is known before geth starts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from eth_keys import keys as eth_keys  # type: ignore[attr-defined]
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

FOLLOWER_LABEL = b"poactl follower etherbase:"


def _write_private(path: Path, data: str) -> None:
    """Create `path` with mode 0600 from the start; refuse to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def follower_address(node: str) -> str:
    """The etherbase of a node that holds no identity: keyless, the same on every start."""
    return to_checksum_address(keccak(FOLLOWER_LABEL + node.encode())[-20:])


def address_of_public_key(public_key: bytes) -> str:
    """The checksummed address of a 64-byte uncompressed public key (x‖y)."""
    return str(eth_keys.PublicKey(public_key).to_checksum_address())


def create_node_key(nodekey_file: Path) -> None:
    """Write geth's p2p node key (hex, no 0x) with mode 0600."""
    _write_private(nodekey_file, secrets.token_bytes(32).hex())


def enode_id(nodekey_file: Path) -> str:
    """The 128-hex-digit public key that names this node in an enode URL."""
    private = eth_keys.PrivateKey(bytes.fromhex(nodekey_file.read_text().strip()))
    return str(private.public_key.to_bytes().hex())


def enode_url(nodekey_file: Path, host: str, port: int) -> str:
    return f"enode://{enode_id(nodekey_file)}@{host}:{port}"
