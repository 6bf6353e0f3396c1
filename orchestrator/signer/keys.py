"""Who holds a validator key, and the 65-byte signature Clique wants from it.

Two custody modes, chosen per bank:

* `secrets`: the key is a secret in the bank's vault (Key Vault secrets, or the local
  vault), read when the identity's lease is taken and kept only in the agent's memory:
  never on disk, not even encrypted.
* `keys`: the key is a non-exportable vault key (Key Vault EC P-256K, or the local
  vault's sign-only keys). The agent sends the 32-byte digest, gets a raw 64-byte
  `r‖s` (ES256K), and finishes it here: `s` lowered to the lower half of the curve
  order (the vault may answer either) and the recovery id found by recovering the
  public key for v = 0 and v = 1.

Either way the signature is checked to recover to the identity's address before it
leaves: geth copies whatever it gets into the block, and a short or wrong answer
crashes it or gets the block rejected by every peer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from eth_keys import keys as eth_keys  # type: ignore[attr-defined]
from eth_keys.datatypes import PrivateKey
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError

from orchestrator.boundaries import Secret
from orchestrator.errors import SignerError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SigningFailed(SignerError):
    """The key's holder did not produce a valid signature for the identity."""


class ValidatorKey(Protocol):
    """A key that signs 32-byte digests as one validator address."""

    @property
    def address(self) -> str: ...

    def sign(self, digest: bytes) -> bytes:
        """65 bytes r‖s‖v, v in {0, 1}, low s, recovering to `address`."""


def clique_signature(digest: bytes, rs: bytes, address: str) -> bytes:
    """r‖s from any ECDSA signer, made into Clique's r‖s‖v: low s, v in {0, 1}, and
    checked to recover to `address`."""
    if len(rs) != 64:
        raise SigningFailed(f"the key answered {len(rs)} bytes, not a 64-byte r‖s", obj=address)
    r, s = int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise SigningFailed("the key answered an r or s outside the curve order", obj=address)
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s
    for v in (0, 1):
        try:
            signature = eth_keys.Signature(vrs=(v, r, s))
            recovered = signature.recover_public_key_from_msg_hash(digest)
        except (BadSignature, ValidationError):
            continue
        if recovered.to_checksum_address() == to_checksum_address(address):
            return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    raise SigningFailed(
        "the signature does not recover to the identity's address",
        obj=address,
        hint="the vault's key is not this identity's key: check the key's name and vault",
    )


@dataclass(frozen=True)
class KeyInMemory:
    """`secrets` custody: the key from the vault's secret, in this process only."""

    key: Secret

    @property
    def address(self) -> str:
        return str(self._private().public_key.to_checksum_address())

    def _private(self) -> PrivateKey:
        return PrivateKey(bytes.fromhex(self.key.value.removeprefix("0x")))

    def sign(self, digest: bytes) -> bytes:
        signature = self._private().sign_msg_hash(digest)  # low s, v in {0, 1} already
        return clique_signature(digest, signature.to_bytes()[:64], self.address)

    def __repr__(self) -> str:
        return "KeyInMemory(***)"


@dataclass(frozen=True)
class KeyInVault:
    """`keys` custody: the vault signs; the private key never leaves it."""

    name: str
    address: str
    sign_digest: Callable[[bytes], bytes]  # digest -> r‖s (the vault's ES256K sign)

    def sign(self, digest: bytes) -> bytes:
        return clique_signature(digest, self.sign_digest(digest), self.address)
