"""The built-in Azure roles a bank's scale set identity gets, and on what.

Least privilege, on the bank's own resources only (nothing of another bank):

- the store container: Storage Blob Data Contributor (blobs and blob leases);
- the publication container: Storage Blob Data Contributor (the agents publish there;
  the other banks read it through the bank's data endpoint, never with a role);
- the artifacts container: Storage Blob Data Reader (boot downloads the wheel);
- the vault: Key Vault Secrets Officer, because any VM can become its bank's leader,
  which creates the bank's keys (validator keys in `secrets` custody, and always the
  transaction, admin and account-reference keys); in `keys` custody also Key Vault
  Crypto Officer (the leader creates the EC P-256K validator keys, every holder signs).

Role GUIDs are Azure's built-in role definitions (the same in every tenant), as the
Azure Verified Modules name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"

ROLE_NAMES = {
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    KEY_VAULT_SECRETS_OFFICER: "Key Vault Secrets Officer",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
    KEY_VAULT_CRYPTO_OFFICER: "Key Vault Crypto Officer",
    KEY_VAULT_CRYPTO_USER: "Key Vault Crypto User",
}

Scope = Literal["vault", "store", "publish", "artifacts"]


@dataclass(frozen=True)
class Grant:
    """One role assignment: `role` (a GUID) on `scope`, in `custody` modes only (None:
    always)."""

    name: str  # the assignment's symbolic name in the template
    role: str
    scope: Scope
    custody: str | None = None


GRANTS = (
    Grant("storeWriter", STORAGE_BLOB_DATA_CONTRIBUTOR, "store"),
    Grant("publicationWriter", STORAGE_BLOB_DATA_CONTRIBUTOR, "publish"),
    Grant("artifactsReader", STORAGE_BLOB_DATA_READER, "artifacts"),
    Grant("vaultSecrets", KEY_VAULT_SECRETS_OFFICER, "vault"),
    Grant("vaultKeys", KEY_VAULT_CRYPTO_OFFICER, "vault", custody="keys"),
)


def grants_for(custody: str) -> tuple[Grant, ...]:
    """The assignments a bank in `custody` mode gets."""
    return tuple(g for g in GRANTS if g.custody in (None, custody))
