"""The embedded vault: a bank's secrets in one encrypted file on one machine.

Layout of the vault directory (mode 0700, created on first write):

- `master.key`: 32 random bytes, mode 0600, created on the first `set_secret`. It is the
  only thing that can decrypt the secrets; whoever can read it can read every secret,
  so like ssh with a private key we refuse to use it while group or others can read it.
  Back it up separately from the secrets file: without it the secrets are lost.
- `secrets.json`: `{"format", "key_id", "secrets": {name: token}, "keys": {name: token}}`,
  mode 0600. Each value
  is encrypted on its own with AES-256-GCM (a fresh 96-bit nonce per write), with the
  secret's name bound in as associated data: a value moved to another name does not
  decrypt. `key_id` is an HMAC of a fixed label under the master key, so a wrong master
  key is told apart from a damaged file without trying to decrypt anything.
- `.lock`: writers hold an exclusive `flock` on it while they read, change and replace
  `secrets.json` (written to a temporary sibling, fsynced, then `os.replace`d), so
  several processes on one machine never lose each other's writes; readers need no
  lock because a replace is atomic.

What this protects: secrets at rest in a state directory, its backups and copies, as
long as `master.key` does not travel with them; values cannot be swapped between names
or altered without detection. What it does not: an attacker running as the same user
(who can read `master.key`), or deletion and rollback of the whole file. In production
the Azure backend (`orchestrator.vault.azure_kv`) replaces this one: keys stay in Key
Vault and a VM reaches them with its managed identity.

Signing keys (`keys` custody) are secp256k1 keys made here and kept under `keys`,
encrypted the same way but bound to a different label: `get_secret` never returns one,
and the vault only signs digests with them (ECDSA, a fresh random nonce per signature,
as Key Vault's ES256K does, so `s` may land in either half of the curve order).

Names are case-insensitive (Key Vault's rule): they are stored lower-cased.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.boundaries import Secret, check_secret_name
from orchestrator.errors import AccessDenied, ConfigError, StateError
from orchestrator.statefile import write_bytes_atomic

log = logging.getLogger(__name__)

FORMAT = "poactl-local-vault/1"
KEY_BYTES = 32
NONCE_BYTES = 12
MASTER_KEY_FILE = "master.key"
SECRETS_FILE = "secrets.json"
LOCK_FILE = ".lock"
_AAD_PREFIX = b"poactl-local-vault/1 secret:"
_KEY_AAD_PREFIX = b"poactl-local-vault/1 key:"
_KEY_ID_LABEL = b"poactl-local-vault/1 key-id"


class LocalVault:
    """Secrets in `directory`, encrypted under the master key file beside them."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def master_key_path(self) -> Path:
        return self._dir / MASTER_KEY_FILE

    @property
    def secrets_path(self) -> Path:
        return self._dir / SECRETS_FILE

    def __repr__(self) -> str:
        return f"LocalVault({str(self._dir)!r})"

    # -- the Vault protocol -----------------------------------------------------------

    def get_secret(self, name: str) -> Secret | None:
        key_name = _key_name(name)
        data = self._load()
        if data is None:
            return None
        master = self._master_key(create=False)
        if master is None:
            raise self._missing_master_key()
        self._check_key_id(data, master)
        token = data["secrets"].get(key_name)
        if token is None:
            return None
        return Secret(self._decrypt(master, key_name, token))

    def set_secret(self, name: str, value: Secret) -> None:
        key_name = _key_name(name)
        if not isinstance(value, Secret):
            raise TypeError("set_secret takes a Secret, not a bare value")
        with self._write_lock():
            data, master = self._open_for_write()
            data["secrets"][key_name] = _encrypt(master, key_name, value.value)
            self._write(data)
        log.debug("stored secret %s in %s", key_name, self.secrets_path)

    # -- signing keys: they sign, and never leave ---------------------------------------

    def create_signing_key(self, name: str) -> bytes:
        key_name = _key_name(name)
        with self._write_lock():
            data, master = self._open_for_write()
            keys = data.setdefault("keys", {})
            if key_name not in keys:
                private = ec.generate_private_key(ec.SECP256K1())
                scalar = private.private_numbers().private_value.to_bytes(32, "big")
                keys[key_name] = _encrypt(master, key_name, scalar.hex(), _KEY_AAD_PREFIX)
                self._write(data)
                log.info("created signing key %s in %s", key_name, self.secrets_path)
        public = self.signing_key(name)
        assert public is not None
        return public

    def signing_key(self, name: str) -> bytes | None:
        private = self._private_key(name)
        if private is None:
            return None
        numbers = private.public_key().public_numbers()
        return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")

    def sign_digest(self, name: str, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ConfigError(f"a digest has 32 bytes, not {len(digest)}", obj=name)
        private = self._private_key(name)
        if private is None:
            raise StateError(
                "no signing key of that name in the vault",
                obj=f"{self.secrets_path} [{_key_name(name)}]",
                hint="the member's leader creates it; restore the vault from its backup",
            )
        der = private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def _private_key(self, name: str) -> ec.EllipticCurvePrivateKey | None:
        key_name = _key_name(name)
        data = self._load()
        if data is None:
            return None
        master = self._master_key(create=False)
        if master is None:
            raise self._missing_master_key()
        self._check_key_id(data, master)
        token = data.get("keys", {}).get(key_name)
        if token is None:
            return None
        scalar = int(self._decrypt(master, key_name, token, _KEY_AAD_PREFIX), 16)
        return ec.derive_private_key(scalar, ec.SECP256K1())

    # -- files ------------------------------------------------------------------------

    def _open_for_write(self) -> tuple[dict[str, Any], bytes]:
        """The vault's contents and master key, under the write lock (a new vault's
        first). A new master key only for a new vault: one made beside an existing file
        could never decrypt what is already in it."""
        data = self._load()
        master = self._master_key(create=data is None)
        if master is None:
            raise self._missing_master_key()
        if data is None:
            data = {"format": FORMAT, "key_id": _key_id(master), "secrets": {}}
        self._check_key_id(data, master)
        return data, master

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        self._make_dir()
        fd = os.open(self._dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _make_dir(self) -> None:
        if not self._dir.is_dir():
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self._dir, 0o700)

    def _master_key(self, *, create: bool) -> bytes | None:
        path = self.master_key_path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._create_master_key() if create else None
        except OSError as e:
            raise ConfigError(
                f"cannot open the vault's master key file: {e.strerror}",
                obj=str(path),
                hint=f"it must be a regular file (not a symlink) readable by you: chmod 600 {path}",
            ) from e
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError("the vault's master key is not a regular file", obj=str(path))
            if st.st_mode & 0o077:
                raise ConfigError(
                    f"the vault's master key file is open to group/others "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it",
                    obj=str(path),
                    hint=f"chmod 600 {path}",
                )
            if st.st_uid != os.geteuid():
                raise ConfigError(
                    f"the vault's master key file belongs to uid {st.st_uid}, not to you",
                    obj=str(path),
                    hint=f"chown {os.geteuid()} {path} (or run poactl as its owner)",
                )
            key = f.read(KEY_BYTES + 1)
        if len(key) != KEY_BYTES:
            raise StateError(
                f"the vault's master key file holds {len(key)} bytes, not {KEY_BYTES}",
                obj=str(path),
                hint="restore master.key from your backup; without it the secrets are lost",
            )
        return key

    def _create_master_key(self) -> bytes:
        key = secrets.token_bytes(KEY_BYTES)
        self._atomic_write(self.master_key_path, key)
        log.info("created the vault master key %s (mode 0600)", self.master_key_path)
        return key

    def _missing_master_key(self) -> StateError:
        return StateError(
            "the vault has secrets but its master key file is missing",
            obj=str(self.master_key_path),
            hint=f"restore master.key from your backup into {self._dir}; "
            "a new key cannot decrypt the existing secrets",
        )

    def _load(self) -> dict[str, Any] | None:
        path = self.secrets_path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise self._corrupt(f"not JSON ({e})") from e
        if not (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and isinstance(data.get("key_id"), str)
            and isinstance(data.get("secrets"), dict)
            and all(isinstance(v, str) for v in data["secrets"].values())
            and isinstance(data.get("keys", {}), dict)
        ):
            raise self._corrupt(f"not a {FORMAT} file")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        self._atomic_write(self.secrets_path, text.encode())

    def _atomic_write(self, path: Path, content: bytes) -> None:
        write_bytes_atomic(path, content)  # its temporary file is 0600 from the start
        dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)

    # -- crypto checks ------------------------------------------------------------------

    def _check_key_id(self, data: dict[str, Any], master: bytes) -> None:
        if not hmac.compare_digest(data["key_id"], _key_id(master)):
            raise AccessDenied(
                "the vault's master key does not decrypt this secrets file",
                obj=str(self.secrets_path),
                hint=f"put back the master key it was written with ({self.master_key_path}); "
                "a different key cannot read these secrets",
            )

    def _decrypt(self, master: bytes, key_name: str, token: str, label: bytes = _AAD_PREFIX) -> str:
        try:
            blob = base64.urlsafe_b64decode(token.encode("ascii"))
            nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
            plain = AESGCM(master).decrypt(nonce, sealed, label + key_name.encode("ascii"))
            return plain.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as e:
            # The key itself is right (key_id matched): the entry was altered or moved.
            raise StateError(
                "a secret does not decrypt under its own name: the file was altered "
                "(a value corrupted, or moved from another name)",
                obj=f"{self.secrets_path} [{key_name}]",
                hint="restore secrets.json from a backup, or set the secret again",
            ) from e

    def _corrupt(self, why: str) -> StateError:
        return StateError(
            f"the vault's secrets file is corrupt: {why}",
            obj=str(self.secrets_path),
            hint="restore secrets.json from a backup (the master key alone cannot rebuild it)",
        )


def _key_name(name: str) -> str:
    return check_secret_name(name).lower()


def _key_id(master: bytes) -> str:
    return hmac.new(master, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:32]


def _encrypt(master: bytes, key_name: str, plain: str, label: bytes = _AAD_PREFIX) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, plain.encode("utf-8"), label + key_name.encode("ascii"))
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
