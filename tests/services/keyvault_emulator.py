"""A Key Vault emulator for the vault tests: the session fixture `keyvault_emulator`.

Neither Lowkey Vault (its app jar is not on the Maven Central mirror this project can
reach) nor a Go Key Vault emulator (not on the Go module proxy) can be installed here,
so the Azure vault backend is tested against this emulator instead.

`KeyVaultEmulator` is a small Key Vault data-plane server written here, in-process on
two loopback ports. It speaks the wire protocol the real SDK and azure-identity speak,
which is what we need to test the Azure backend end to end:

- HTTPS (a self-signed certificate made per session; clients verify it through
  `connection_verify=<its PEM file>`, not by turning verification off);
- Key Vault's challenge authentication: a request without a bearer token gets 401 with
  `WWW-Authenticate: Bearer authorization=..., resource="https://vault.azure.net"`; a
  token must be signed by the emulator's identity endpoint, unexpired and for that
  audience, else 401; an identity without a secrets role gets 403 (RBAC);
- an IMDS-style managed-identity token endpoint (plain HTTP, `Metadata: true` header),
  which azure-identity's `DefaultAzureCredential`/`ManagedIdentityCredential` reach
  through `AZURE_POD_IDENTITY_AUTHORITY_HOST`: the credential path a VM uses in
  production. Under the prefix `/untrusted` it issues tokens the vault rejects.
  Identities: `system` (the default, "Key Vault Secrets Officer"), `reader` ("Key Vault
  Secrets User"), `no-role` (none); any other client_id gets IMDS's 400 "Identity not
  found";
- secrets: versions on set, names case-insensitive, 404 `SecretNotFound`, soft delete
  (`soft_delete(name)`) after which set answers 409 "deleted but recoverable";
- keys: `POST /keys/{name}/create` makes an EC P-256K (secp256k1) key here, `GET
  /keys/{name}[/{version}]` answers its public JWK (never `d`: keys are not
  exportable), `POST /keys/{name}/{version}/sign` signs a 32-byte digest with ES256K
  and answers the raw 64-byte r‖s with a random nonce, `s` in either half of the order,
  as Key Vault does; roles "Key Vault Crypto Officer" (create, get, sign) and "Crypto
  User" (get, sign);
- `fail_next(status)` makes the next vault request answer with that status (429/503...).

It is a test double of a remote service, at the HTTP boundary: our code and the Azure
SDK run unchanged against it. Where it and real Key Vault could disagree (exact error
texts), the tests assert only what our mapping depends on (status codes, "deleted").
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.vault.azure_kv import AzureKeyVault

KEYVAULT_RESOURCE = "https://vault.azure.net"
TENANT = "00000000-0000-0000-0000-000000000000"
IMDS_PATH = "/metadata/identity/oauth2/token"
UNTRUSTED_PREFIX = "/untrusted"
NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
OFFICER, USER = "Key Vault Secrets Officer", "Key Vault Secrets User"
CRYPTO_OFFICER, CRYPTO_USER = "Key Vault Crypto Officer", "Key Vault Crypto User"
ROLE_ACTIONS = {
    OFFICER: {"secrets:get", "secrets:set", "secrets:delete"},
    USER: {"secrets:get"},
    CRYPTO_OFFICER: {"keys:get", "keys:create", "keys:sign"},
    CRYPTO_USER: {"keys:get", "keys:sign"},
}
# Environment variables through which azure-identity could pick another identity; the
# fixtures clear them so the managed-identity path is the one under test.
IDENTITY_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


# -- what the fixtures yield -------------------------------------------------------------


@dataclass(frozen=True)
class KeyVaultService:
    """A running Key Vault emulator and the settings a client needs to reach it.

    `open_vault` builds our `AzureKeyVault` with azure-identity's
    `DefaultAzureCredential`, as production does; its managed-identity part is pointed
    at the emulator's token endpoint for the test's duration (`monkeypatch`), because
    MSAL reads `AZURE_POD_IDENTITY_AUTHORITY_HOST` each time it fetches a token.
    """

    kind: str  # "emulator"
    vault_url: str
    identity_host: str  # base URL of the IMDS-style token endpoint
    connection_verify: bool | str  # the emulator's certificate (PEM path), or False
    verify_challenge_resource: bool = False  # the challenge names vault.azure.net
    emulator: KeyVaultEmulator | None = None  # fault injection
    startup_seconds: float = 0.0

    def use_identity(self, monkeypatch: pytest.MonkeyPatch, *, untrusted: bool = False) -> None:
        """Make azure-identity's managed-identity credential use this emulator."""
        for name in IDENTITY_ENV:
            monkeypatch.delenv(name, raising=False)
        host = self.identity_host + (UNTRUSTED_PREFIX if untrusted else "")
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)

    @contextlib.contextmanager
    def open_vault(
        self,
        monkeypatch: pytest.MonkeyPatch,
        *,
        client_id: str | None = None,
        untrusted: bool = False,
        credential: TokenCredential | None = None,
        **options: Any,
    ) -> Iterator[AzureKeyVault]:
        """An `AzureKeyVault` on this emulator; `client_id` picks a user-assigned
        identity, `untrusted` takes tokens from an issuer the vault does not trust."""
        self.use_identity(monkeypatch, untrusted=untrusted)
        settings: dict[str, Any] = {
            "connection_verify": self.connection_verify,
            "verify_challenge_resource": self.verify_challenge_resource,
        }
        settings.update(options)
        with contextlib.ExitStack() as stack:
            if credential is None:
                credential = stack.enter_context(
                    DefaultAzureCredential(managed_identity_client_id=client_id)
                )
            yield stack.enter_context(
                AzureKeyVault(self.vault_url, credential=credential, **settings)
            )


# -- the built-in emulator ---------------------------------------------------------------


@dataclass
class _Secret:
    name: str  # as first created (names are case-insensitive)
    versions: list[tuple[str, str, int]] = field(default_factory=list)  # version, value, t
    deleted: bool = False


class KeyVaultEmulator:
    """Key Vault's secrets data plane plus an IMDS token endpoint, on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certificate: tuple[Path, Path] | None = None,
        public_url: str | None = None,
    ) -> None:
        """`host`, `port` and a (certificate, key) pair serve the vault elsewhere than on a
        loopback port with its own self-signed certificate; `public_url` is the URL its
        answers name it by (ids, kids), as Key Vault names itself by its DNS name (the boot
        rehearsal gives it a vault's Azure name on port 443)."""
        self.workdir = workdir
        self.host, self.port, self.public_url = host, port, public_url
        self._given_certificate = certificate
        self.cert_path = certificate[0] if certificate else workdir / "kv-emulator-cert.pem"
        self._key_path = certificate[1] if certificate else workdir / "kv-emulator-key.pem"
        self._signing_key = secrets.token_bytes(32)
        self._untrusted_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self._keys: dict[str, _Key] = {}
        self.sign_requests = 0
        self._faults: list[int] = []
        self.identities: dict[str, set[str]] = {
            "system": {OFFICER, CRYPTO_OFFICER},
            "reader": {USER, CRYPTO_USER},
            "no-role": set(),
        }
        self.vault_requests = 0
        self.token_requests = 0
        self._servers: list[ThreadingHTTPServer] = []
        self.vault_url = ""
        self.identity_host = ""

    # lifecycle

    def start(self) -> KeyVaultEmulator:
        if self._given_certificate is None:
            _write_self_signed(self.cert_path, self._key_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self._key_path)
        vault = _Server((self.host, self.port), _VaultHandler, self)
        # The handshake happens in the request's thread, not in the accept loop.
        vault.socket = context.wrap_socket(
            vault.socket, server_side=True, do_handshake_on_connect=False
        )
        identity = _Server((self.host, 0), _IdentityHandler, self)
        self._servers = [vault, identity]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.vault_url = self.public_url or f"https://{self.host}:{vault.server_address[1]}"
        self.identity_host = f"http://{self.host}:{identity.server_address[1]}"
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    # controls for tests

    def fail_next(self, status: int, count: int = 1) -> None:
        with self._lock:
            self._faults.extend([status] * count)

    def soft_delete(self, name: str) -> None:
        with self._lock:
            self._secrets[name.lower()].deleted = True

    # the identity endpoint

    def handle_token(self, path: str, headers: Any) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.token_requests += 1
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == IMDS_PATH:
            key = self._signing_key
        elif url.path == UNTRUSTED_PREFIX + IMDS_PATH:
            key = self._untrusted_key
        else:
            return 404, {}, {"error": "not_found"}
        if headers.get("Metadata", "").lower() != "true":
            return 400, {}, _imds_error("Required metadata header not specified")
        resource = query.get("resource")
        if not resource:
            return 400, {}, _imds_error("Required audience parameter not specified")
        identity = query.get("client_id", "system")
        if identity not in self.identities:
            return 400, {}, _imds_error("Identity not found")
        now = int(time.time())
        claims = {
            "aud": resource.rstrip("/"),
            "iss": f"https://sts.windows.net/{TENANT}/",
            "oid": identity,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        body = {
            "access_token": _jwt(claims, key),
            "expires_in": "3599",
            "expires_on": str(now + 3599),
            "ext_expires_in": "3599",
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        }
        return 200, {}, body

    # the vault

    def handle_vault(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.vault_requests += 1
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            extra = {"Retry-After": "1"} if fault == 429 else {}
            return fault, extra, _kv_error("Throttled" if fault == 429 else "ServiceUnavailable")
        url = urlsplit(path)
        if not parse_qs(url.query).get("api-version"):
            return 400, {}, _kv_error("BadParameter", "The api-version parameter is missing")
        challenge = {
            "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/'
            f'{TENANT}", resource="{KEYVAULT_RESOURCE}"'
        }
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 401, challenge, _kv_error("Unauthorized", "Request is missing a Bearer token.")
        claims = _verify_jwt(auth[len("Bearer ") :], self._signing_key)
        if claims is None or claims.get("aud") != KEYVAULT_RESOURCE:
            return 401, challenge, _kv_error("Unauthorized", "AKV10032: Invalid token.")
        parts = [p for p in url.path.split("/") if p]
        kind = parts[0] if parts else ""
        if (
            len(parts) not in (2, 3, 4)
            or kind not in ("secrets", "keys")
            or not NAME.match(parts[1])
        ):
            return 400, {}, _kv_error("BadParameter", "Unsupported path or invalid name")
        if kind == "keys":
            verb = parts[-1] if method == "POST" else "get"
            action = f"keys:{verb}"
        else:
            action = "secrets:" + {"GET": "get", "PUT": "set", "DELETE": "delete"}.get(method, "")
        roles = self.identities.get(str(claims.get("oid")), set())
        if not any(action in ROLE_ACTIONS[r] for r in roles):
            return (
                403,
                {},
                _kv_error(
                    "Forbidden",
                    "Caller is not authorized to perform action on resource.",
                    inner="ForbiddenByRbac",
                ),
            )
        name = parts[1]
        if kind == "keys":
            with self._lock:
                return self._key_request(action, name, parts[2:], json.loads(body or b"{}"))
        version = parts[2] if len(parts) == 3 else ""
        with self._lock:
            if method == "GET":
                return self._get(name, version)
            if method == "PUT":
                return self._set(name, json.loads(body or b"{}"))
            return self._delete(name)

    def _bundle(self, stored: _Secret, version: str, value: str, created: int) -> Any:
        return {
            "value": value,
            "id": f"{self.vault_url}/secrets/{stored.name}/{version}",
            "attributes": {
                "enabled": True,
                "created": created,
                "updated": created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
        }

    def _get(self, name: str, version: str) -> tuple[int, dict[str, str], Any]:
        stored = self._secrets.get(name.lower())
        matches = [] if stored is None or stored.deleted else stored.versions
        if version:
            matches = [v for v in matches if v[0] == version]
        if stored is None or not matches:
            message = f"A secret with (name/id) {name} was not found in this key vault."
            return 404, {}, _kv_error("SecretNotFound", message)
        return 200, {}, self._bundle(stored, *matches[-1])

    def _set(self, name: str, request: Any) -> tuple[int, dict[str, str], Any]:
        value = request.get("value") if isinstance(request, dict) else None
        if not isinstance(value, str):
            return 400, {}, _kv_error("BadParameter", "Property value is required.")
        stored = self._secrets.setdefault(name.lower(), _Secret(name))
        if stored.deleted:
            message = (
                f"Secret {stored.name} is currently in a deleted but recoverable state, and its "
                "name cannot be reused; in this state, the secret can only be recovered or purged."
            )
            return 409, {}, _kv_error("Conflict", message, inner="ObjectIsDeletedButRecoverable")
        entry = (uuid.uuid4().hex, value, int(time.time()))
        stored.versions.append(entry)
        return 200, {}, self._bundle(stored, *entry)

    def _delete(self, name: str) -> tuple[int, dict[str, str], Any]:
        stored = self._secrets.get(name.lower())
        if stored is None or stored.deleted:
            return 404, {}, _kv_error("SecretNotFound", f"Secret not found: {name}")
        stored.deleted = True
        return 200, {}, self._bundle(stored, *stored.versions[-1])

    # keys

    def _key_request(
        self, action: str, name: str, rest: list[str], request: Any
    ) -> tuple[int, dict[str, str], Any]:
        stored = self._keys.get(name.lower())
        if action == "keys:create":
            if rest != ["create"]:
                return 400, {}, _kv_error("BadParameter", "Unsupported path")
            if request.get("kty") not in ("EC", "EC-HSM") or request.get("crv") != "P-256K":
                return 400, {}, _kv_error("BadParameter", "only EC P-256K keys are emulated")
            stored = _Key(name, ec.generate_private_key(ec.SECP256K1()), uuid.uuid4().hex)
            self._keys[name.lower()] = stored
            return 200, {}, self._key_bundle(stored)
        if stored is None or (len(rest) >= 1 and rest[0] not in (stored.version, "sign")):
            message = f"A key with (name/id) {name} was not found in this key vault."
            return 404, {}, _kv_error("KeyNotFound", message)
        if action == "keys:get":
            return 200, {}, self._key_bundle(stored)
        digest = _unb64(str(request.get("value", "")))
        if request.get("alg") != "ES256K" or len(digest) != 32:
            return 400, {}, _kv_error("BadParameter", "ES256K signs a 32-byte digest")
        self.sign_requests += 1
        r, s = decode_dss_signature(
            stored.private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return 200, {}, {"kid": self._kid(stored), "value": _b64(signature)}

    def _kid(self, stored: _Key) -> str:
        return f"{self.vault_url}/keys/{stored.name}/{stored.version}"

    def _key_bundle(self, stored: _Key) -> Any:
        numbers = stored.private.public_key().public_numbers()
        now = int(time.time())
        return {
            "key": {
                "kid": self._kid(stored),
                "kty": "EC",
                "crv": "P-256K",
                "x": _b64(numbers.x.to_bytes(32, "big")),
                "y": _b64(numbers.y.to_bytes(32, "big")),
                "key_ops": ["sign", "verify"],
            },
            "attributes": {
                "enabled": True,
                "created": now,
                "updated": now,
                "exportable": False,
                "recoveryLevel": "Recoverable+Purgeable",
            },
        }


@dataclass
class _Key:
    name: str
    private: ec.EllipticCurvePrivateKey  # lives in this process only, like an HSM's
    version: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or rejects our certificate is the test's business

    def __init__(self, address: tuple[str, int], handler: type, emulator: KeyVaultEmulator):
        self.emulator = emulator
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms), which no real vault adds.
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection frees its thread after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean (and never echo request lines)

    def reply(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _VaultHandler(_Handler):
    def handle_one(self, method: str) -> None:
        body = self.read_body()
        self.reply(*self.server.emulator.handle_vault(method, self.path, self.headers, body))

    def do_GET(self) -> None:
        self.handle_one("GET")

    def do_PUT(self) -> None:
        self.handle_one("PUT")

    def do_DELETE(self) -> None:
        self.handle_one("DELETE")

    def do_POST(self) -> None:
        self.handle_one("POST")


class _IdentityHandler(_Handler):
    def do_GET(self) -> None:
        self.read_body()
        self.reply(*self.server.emulator.handle_token(self.path, self.headers))


def _kv_error(code: str, message: str = "", inner: str | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message or code}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def _imds_error(description: str) -> Any:
    return {"error": "invalid_request", "error_description": description}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt(claims: dict[str, Any], key: bytes) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64(signature)}"


def _verify_jwt(token: str, key: bytes) -> dict[str, Any] | None:
    try:
        head, payload, signature = token.split(".")
        expected = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        if not hmac.compare_digest(expected, given):
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict) or not claims.get("nbf", 0) <= time.time() < claims["exp"]:
        return None
    return claims


def _write_self_signed(cert_path: Path, key_path: Path) -> None:
    """A one-day certificate for 127.0.0.1/localhost that is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "poactl test key vault")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keyvault_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVaultService]:
    """The built-in Key Vault emulator (always available)."""
    started = time.monotonic()
    emulator = KeyVaultEmulator(tmp_path_factory.mktemp("kv-emulator")).start()
    try:
        yield KeyVaultService(
            kind="emulator",
            vault_url=emulator.vault_url,
            identity_host=emulator.identity_host,
            connection_verify=str(emulator.cert_path),
            emulator=emulator,
            startup_seconds=time.monotonic() - started,
        )
    finally:
        emulator.stop()
