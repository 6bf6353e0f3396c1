"""A validator identity's key, from the bank's vault, when its lease is taken.

In `secrets` custody the key is read from the vault into this process's memory only
(`KeyInMemory`); in `keys` custody the vault keeps it and signs (`KeyInVault`). Either
way the key must be the one the network's genesis names for that identity: a vault of
another consortium, or a replaced key, is refused before anything is signed.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from orchestrator.agent.sealing import Identity
from orchestrator.boundaries import Secret, Vault
from orchestrator.config import Custody
from orchestrator.errors import StateError
from orchestrator.geth.keys import address_of_public_key
from orchestrator.network.names import validator_key_name
from orchestrator.retry import retry_transient
from orchestrator.signer.keys import KeyInMemory, KeyInVault, ValidatorKey

MISSING_HINT = (
    "the member's leader creates it; restore it from the vault's backup "
    "(soft-deleted secrets and keys can be recovered), or check the vault URL"
)


def read_secret(vault: Vault, name: str) -> Secret:
    """A secret the bank's leader created; StateError when it is missing."""
    value = retry_transient(
        lambda: vault.get_secret(name), what=f"read {name} from the vault", timeout=5
    )
    if value is None:
        raise StateError("the secret is missing from the bank's vault", obj=name, hint=MISSING_HINT)
    return value


def load_identity(
    vault: Vault, member: str, index: int, expected: str, *, custody: Custody
) -> Identity:
    """Identity `index` of `member`, checked against the signer the genesis names."""
    name = validator_key_name(member, index)
    key: ValidatorKey
    if custody == "keys":
        public = retry_transient(
            lambda: vault.signing_key(name), what=f"read key {name} from the vault", timeout=5
        )
        if public is None:
            raise StateError("the signing key is missing from the bank's vault", obj=name,
                             hint=MISSING_HINT)  # fmt: skip
        key = KeyInVault(name, address_of_public_key(public), lambda d: vault.sign_digest(name, d))
    else:
        key = KeyInMemory(read_secret(vault, name))
    if to_checksum_address(key.address) != to_checksum_address(expected):
        raise StateError(
            f"the vault's key for identity {index} is {key.address}, but the network's "
            f"genesis names signer {expected}",
            obj=name,
            hint="the vault belongs to another consortium, or the key was replaced (or the "
            "member's custody setting changed); restore the original key",
        )
    return Identity(index, key)


def preferred_order(node: str, count: int) -> list[int]:
    """The identities to try, the one matching the node's number first (`bank-a-2`
    tries identity 1 first), so a member's agents do not all race for identity 0."""
    digits = "".join(c for c in node.rsplit("-", 1)[-1] if c.isdigit())
    first = (int(digits) - 1) % count if digits and count else 0
    return [(first + k) % count for k in range(count)]
