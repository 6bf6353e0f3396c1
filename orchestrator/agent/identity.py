"""A validator identity's secrets, read from the bank's vault when its lease is taken.

The key must be the one the network's genesis names for that identity: a vault of
another consortium, or a replaced key, is refused before anything is signed.
"""

from __future__ import annotations

from eth_account import Account

from orchestrator.agent.sealing import Identity
from orchestrator.boundaries import Secret, Vault
from orchestrator.errors import StateError
from orchestrator.network.names import validator_key_name, validator_password_name
from orchestrator.retry import retry_transient


def read_secret(vault: Vault, name: str) -> Secret:
    """A secret the bank's leader created; StateError when it is missing."""
    value = retry_transient(
        lambda: vault.get_secret(name), what=f"read {name} from the vault", timeout=5
    )
    if value is None:
        raise StateError(
            "the secret is missing from the bank's vault",
            obj=name,
            hint="the member's leader creates it; restore it from the vault's backup "
            "(soft-deleted secrets can be recovered), or check the vault URL",
        )
    return value


def load_identity(vault: Vault, member: str, index: int, expected: str) -> Identity:
    """Identity `index` of `member`, checked against the signer the genesis names."""
    key = read_secret(vault, validator_key_name(member, index))
    password = read_secret(vault, validator_password_name(member, index))
    address: str = Account.from_key(key.value).address
    if address.lower() != expected.lower():
        raise StateError(
            f"the vault's key for identity {index} is {address}, but the network's "
            f"genesis names signer {expected}",
            obj=validator_key_name(member, index),
            hint="the vault belongs to another consortium, or the key was replaced; "
            "restore the original key",
        )
    return Identity(index, address, key, password)
