"""Azure Key Vault as the bank's vault: secrets through `azure-keyvault-secrets`, and
validator keys that only sign through `azure-keyvault-keys` (`keys` custody: EC P-256K
keys created in the vault, ES256K signatures over a 32-byte digest; the private key
never leaves the vault, which has no export operation for them).

In production the credential is `azure.identity.DefaultAzureCredential()`, which on a VM
resolves to the VM's managed identity; that identity needs the "Key Vault Secrets
Officer" role on the vault (or "Key Vault Secrets User" for an agent that only reads),
or an access policy granting get and set on secrets; in `keys` custody also "Key Vault
Crypto Officer" for the leader that creates the keys and "Key Vault Crypto User" (get,
sign) for the agents that seal.

The SDK never retries here (`retry_total=0`) and waits at most `connection_timeout` to
connect and `read_timeout` for an answer: callers retry `ServiceUnavailable` with a
deadline (`orchestrator.retry`). How SDK errors map to ours:

- secret not found (404)                      -> `None` (a normal answer)
- 401, 403, the credential got no token       -> `AccessDenied` (fix the identity/role)
- no connection, timeouts, 408, 429, 5xx      -> `ServiceUnavailable` (retry)
- an untrusted TLS certificate, a challenge for another domain -> `ConfigError`
- 409 on set (the name is deleted but still recoverable) -> `StateError` (recover/purge)
- another 4xx                                 -> `ConfigError`

Secret values never reach a log: the SDK logs headers only (its body logging stays off),
and our messages name the secret, never its value.
"""

from __future__ import annotations

import logging
import ssl
from types import TracebackType
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.keys import KeyClient, KeyCurveName, KeyVaultKey
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient

from orchestrator.boundaries import Secret, check_secret_name
from orchestrator.errors import AccessDenied, ConfigError, PoaError, ServiceUnavailable, StateError

log = logging.getLogger(__name__)

ROLE_HINT = (
    "give this machine's identity the 'Key Vault Secrets Officer' role on the vault "
    "('Key Vault Secrets User' if it only reads; with keys custody also 'Key Vault Crypto "
    "Officer', or 'Crypto User' to sign only), or an access policy with get and set on "
    "secrets; check which identity DefaultAzureCredential picked"
)


class AzureKeyVault:
    """Secrets in one Azure Key Vault (`https://<name>.vault.azure.net`)."""

    def __init__(
        self,
        vault_url: str,
        *,
        credential: TokenCredential,
        connection_timeout: float = 3.0,
        read_timeout: float = 5.0,
        verify_challenge_resource: bool = True,
        connection_verify: bool | str = True,
    ) -> None:
        parts = urlsplit(vault_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(
                "not a Key Vault URL",
                obj=repr(vault_url),
                hint="use the vault's https URL, e.g. https://<vault-name>.vault.azure.net",
            )
        self._url = vault_url.rstrip("/")
        self._credential = credential
        self._options = {
            "retry_total": 0,
            "connection_timeout": connection_timeout,
            "read_timeout": read_timeout,
            "verify_challenge_resource": verify_challenge_resource,
            "connection_verify": connection_verify,
        }
        self._client = SecretClient(self._url, credential, **self._options)
        self._keys = KeyClient(self._url, credential, **self._options)
        self._crypto: dict[str, CryptographyClient] = {}  # key name -> its client

    @property
    def vault_url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"AzureKeyVault({self._url!r})"

    def close(self) -> None:
        self._client.close()
        self._keys.close()
        for crypto in self._crypto.values():
            crypto.close()

    def __enter__(self) -> AzureKeyVault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the Vault protocol -----------------------------------------------------------

    def get_secret(self, name: str) -> Secret | None:
        check_secret_name(name)
        try:
            bundle = self._client.get_secret(name)
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            raise self._error(e, "read", name) from e
        except ValueError as e:  # the SDK's check of the challenge's resource
            raise self._challenge_error(e, name) from e
        return Secret(bundle.value if bundle.value is not None else "")

    def set_secret(self, name: str, value: Secret) -> None:
        check_secret_name(name)
        if not isinstance(value, Secret):
            raise TypeError("set_secret takes a Secret, not a bare value")
        try:
            self._client.set_secret(name, value.value)
        except AzureError as e:
            raise self._error(e, "write", name) from e
        except ValueError as e:  # the SDK's check of the challenge's resource
            raise self._challenge_error(e, name) from e
        log.debug("stored secret %s in %s", name, self._url)

    # -- signing keys (`keys` custody) --------------------------------------------------

    def create_signing_key(self, name: str) -> bytes:
        existing = self.signing_key(name)
        if existing is not None:
            return existing
        try:
            key = self._keys.create_ec_key(
                name, curve=KeyCurveName.p_256_k, key_operations=["sign", "verify"]
            )
        except AzureError as e:
            raise self._error(e, "create", name) from e
        except ValueError as e:
            raise self._challenge_error(e, name) from e
        log.info("created signing key %s in %s", name, self._url)
        return _public_key(key, name)

    def signing_key(self, name: str) -> bytes | None:
        check_secret_name(name)
        try:
            key = self._keys.get_key(name)
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            raise self._error(e, "read", name) from e
        except ValueError as e:
            raise self._challenge_error(e, name) from e
        return _public_key(key, name)

    def sign_digest(self, name: str, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ConfigError(f"a digest has 32 bytes, not {len(digest)}", obj=name)
        try:
            crypto = self._crypto.get(name)
            if crypto is None:
                key = self._keys.get_key(name)
                crypto = self._crypto[name] = CryptographyClient(
                    key, self._credential, **self._options
                )
            result = crypto.sign(SignatureAlgorithm.es256_k, digest)
        except ResourceNotFoundError as e:
            raise StateError(
                "no signing key of that name in the vault",
                obj=f"{self._url} [{name}]",
                hint="the member's leader creates it; check the vault URL, or recover a "
                "deleted key (az keyvault key recover)",
            ) from e
        except AzureError as e:
            raise self._error(e, "sign with", name) from e
        except ValueError as e:
            raise self._challenge_error(e, name) from e
        return bytes(result.signature)

    # -- errors -------------------------------------------------------------------------

    def _error(self, e: AzureError, verb: str, name: str) -> PoaError:
        obj = f"{self._url} [{name}]"
        status = e.status_code if isinstance(e, HttpResponseError) else None
        reason = _reason(e)
        if isinstance(e, ClientAuthenticationError) and status is None:
            # A credential chain lists every credential it tried; the managed identity's
            # line is the one that matters on a VM.
            lines = [line.strip() for line in (e.message or "").splitlines()]
            mi = [line for line in lines if line.startswith("ManagedIdentityCredential:")]
            return AccessDenied(
                f"could not get a token for Key Vault: {reason}" + (f" ({mi[0]})" if mi else ""),
                obj=obj,
                hint="give this machine a managed identity (system-assigned, or the "
                "user-assigned one named by AZURE_CLIENT_ID) and " + ROLE_HINT[len("give ") :],
            )
        if isinstance(e, ClientAuthenticationError) or status in (401, 403):
            return AccessDenied(
                f"Key Vault refused to let us {verb} {name}: {reason}", obj=obj, hint=ROLE_HINT
            )
        if _certificate_rejected(e):
            return ConfigError(
                f"the vault's TLS certificate is not trusted: {reason}",
                obj=self._url,
                hint="check the vault URL; behind a TLS-inspecting proxy set REQUESTS_CA_BUNDLE "
                "to its CA (an emulator's certificate goes in connection_verify)",
            )
        if isinstance(e, (ServiceRequestError, ServiceResponseError)):
            return ServiceUnavailable(
                f"Key Vault did not answer ({reason})",
                obj=self._url,
                hint="check the network path to the vault (DNS, firewall, private endpoint); "
                "poactl retries until its deadline",
            )
        if status is not None and (status in (408, 429) or status >= 500):
            return ServiceUnavailable(
                f"Key Vault is busy or failing ({reason})",
                obj=self._url,
                hint="poactl retries until its deadline; if it persists, check Azure's status",
            )
        if status == 409:
            if "deleted" in reason.lower():
                return StateError(
                    "the secret name is deleted but still recoverable in the vault, "
                    "so it cannot be set",
                    obj=obj,
                    hint=f"recover it (az keyvault secret recover --id {self._url}/secrets/"
                    f"{name}) or purge it (az keyvault secret purge ...), then retry",
                )
            return StateError(f"Key Vault reported a conflict: {reason}", obj=obj)
        return ConfigError(
            f"Key Vault rejected the request to {verb} {name}: {reason}",
            obj=obj,
            hint="check the vault URL and the secret (Key Vault limits a value to 25 KiB)",
        )

    def _challenge_error(self, e: ValueError, name: str) -> ConfigError:
        return ConfigError(
            f"the vault's authentication challenge was refused: {e}",
            obj=f"{self._url} [{name}]",
            hint="use the vault's own URL (https://<name>.vault.azure.net); only a test "
            "emulator needs verify_challenge_resource=False",
        )


def _public_key(key: KeyVaultKey, name: str) -> bytes:
    """x‖y of an EC P-256K key; ConfigError for a key of another type or curve."""
    jwk = key.key  # JsonWebKey sets its fields dynamically
    kty, crv, x, y = (getattr(jwk, f, None) for f in ("kty", "crv", "x", "y"))
    if crv != KeyCurveName.p_256_k or not x or not y:
        raise ConfigError(
            f"the vault's key is {kty} {crv}, not an EC P-256K (secp256k1) key",
            obj=name,
            hint="a validator key must be EC P-256K; remove the key of that name or pick "
            "another vault",
        )
    return bytes(x).rjust(32, b"\0") + bytes(y).rjust(32, b"\0")


def _certificate_rejected(e: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return False


def _reason(e: AzureError) -> str:
    """A short, value-free description of an SDK error."""
    if isinstance(e, HttpResponseError):
        code = e.error.code if e.error is not None else None
        message = e.error.message if e.error is not None else e.reason
        parts = [str(e.status_code) if e.status_code else None, code, message]
        text = " ".join(p for p in parts if p)
        if text:
            return text.splitlines()[0]
    return (e.message or type(e).__name__).splitlines()[0]
