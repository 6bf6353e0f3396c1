"""Vault backends: where a bank keeps its named secrets (validator keys, keystore
passwords, the consortium's pseudonym key).

Both implement `orchestrator.boundaries.Vault` and validate names with
`check_secret_name` (Key Vault's rule). Names are case-insensitive, as in Key Vault.

- `orchestrator.vault.local.LocalVault`: the embedded default, an encrypted file on one
  machine (AES-256-GCM under a 0600 master key file).
- `orchestrator.vault.azure_kv.AzureKeyVault`: Azure Key Vault through
  `azure-keyvault-secrets`, authenticated by an `azure-identity` credential (a VM's
  managed identity in production).

Only the composition root imports a backend; this package imports neither, so using
one does not load the other's dependencies.
"""
