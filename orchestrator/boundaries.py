"""The three boundaries services see: secrets (`Vault`), blobs and leases (`Store`) and
nodes (`Runtime`).

Each has real backends, chosen by configuration in one composition root
(`orchestrator.wiring`); nothing else imports a backend. One contract-test suite per
Protocol (`tests/contract/`) runs against every backend.

Normal answers are return values: a missing secret or blob, a lease someone else holds
and a failed write condition are `None`/`False`. An exception means we could not ask:
`ServiceUnavailable` is transient (retry with a deadline, `orchestrator.retry`);
`AccessDenied` and `ConfigError` are permanent (stop and tell the operator).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.errors import ConfigError

# -- secrets -------------------------------------------------------------------------

SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")  # Azure Key Vault's rule


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    value: str

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


def check_secret_name(name: str) -> str:
    if not SECRET_NAME.match(name):
        raise ConfigError(
            "not a valid secret name",
            obj=repr(name),
            hint="secret names are 1-127 letters, digits and dashes (Key Vault's rule)",
        )
    return name


class Vault(Protocol):
    """One bank's vault: named secrets, and signing keys that never leave it.

    Signing keys are secp256k1 (Key Vault's EC P-256K): the vault signs a 32-byte
    digest (ES256K) and answers the raw 64-byte r‖s, with `s` in either half of the
    curve order and no recovery id; public keys are the 64-byte x‖y.
    """

    def get_secret(self, name: str) -> Secret | None:
        """The secret's current value, or None when there is no secret of that name."""

    def set_secret(self, name: str, value: Secret) -> None:
        """Create the secret or store a new version of it."""

    def create_signing_key(self, name: str) -> bytes:
        """Create the signing key `name` unless it exists; its public key."""

    def signing_key(self, name: str) -> bytes | None:
        """The public key of the signing key `name`, or None when there is none."""

    def sign_digest(self, name: str, digest: bytes) -> bytes:
        """r‖s over `digest` with the key `name`; StateError when there is no such key."""


# -- blobs and leases ----------------------------------------------------------------

LEASE_MIN_SECONDS = 15  # Azure Blob leases last 15..60 s (or forever; we never ask that)
LEASE_MAX_SECONDS = 60


@dataclass(frozen=True)
class Blob:
    name: str
    data: bytes
    etag: str
    leased: bool  # someone holds a lease on it right now


@dataclass(frozen=True)
class Lease:
    name: str  # the blob it is on
    lease_id: str
    duration: int  # seconds


class Store(Protocol):
    """Blobs with conditional writes (ETags) and leases with a duration.

    Names are paths such as `network/genesis.json`, `enodes/bank-a-1.json`,
    `leases/bank-a/leader`, `heartbeats/bank-a-1.json`.
    """

    def read(self, name: str) -> Blob | None:
        """The blob, or None when it does not exist."""

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        """Create or replace the blob; its new ETag. None when a condition fails:
        `if_absent` and it exists, `if_match` and its ETag differs, or it is under a
        lease that is not `lease`."""

    def list(self, prefix: str) -> list[str]:
        """Names of the blobs under `prefix`, sorted."""

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        """Take the lease on `name` (the blob is created empty if absent). None when
        someone else holds it. Acquiring again with the id already held renews it."""

    def renew_lease(self, lease: Lease) -> bool:
        """Extend the lease by its duration from now; False when it is lost (broken, or
        expired and since taken by someone else)."""

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up at once (no-op when it is already lost)."""

    def break_lease(self, name: str) -> None:
        """End whoever's lease is on `name` at once (an operator's override)."""


class ConsortiumData(Protocol):
    """Another bank's published consortium data, read-only: what a bank needs of the
    others (member descriptors, the genesis, enodes, heartbeats), never their leases."""

    def read(self, name: str) -> Blob | None:
        """The blob, or None when it is not published."""

    def list(self, prefix: str) -> list[str]:
        """Names of the published blobs under `prefix`, sorted."""


class Publication(Protocol):
    """Where a bank publishes its consortium data for the others (write-only here)."""

    def put(self, name: str, data: bytes) -> None:
        """Publish `data` as `name`, replacing what was there."""


# -- nodes ---------------------------------------------------------------------------


class NodeProcess(Protocol):
    """A started geth."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code if it has exited, else None."""

    def stop(self) -> int:
        """Stop it (SIGINT, then TERM, then KILL, each with a bounded wait); the exit code."""

    def kill(self) -> None:
        """SIGKILL it now, without waiting (fencing a geth that does not answer)."""


class Runtime(Protocol):
    def start(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> NodeProcess:
        """Start `argv` for node `name`, appending its output to `log_file`; `env` is added
        to geth's environment (e.g. GOMEMLIMIT)."""

    def run_once(
        self, argv: Sequence[str], *, name: str, timeout: float = 120.0
    ) -> tuple[int, str]:
        """Run a one-shot geth command (`geth init`) to completion: exit code and output."""
