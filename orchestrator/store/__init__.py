"""Blob-and-lease store backends (the `Store` Protocol lives in `orchestrator.boundaries`):
`local` keeps blobs in a SQLite file on this machine, `azure_blob` in an Azure Storage
container. Both follow Azure's lease rules; the argument checks they share live here.

This package imports no backend: the composition root picks one.
"""

from __future__ import annotations

import uuid

from orchestrator.boundaries import LEASE_MAX_SECONDS, LEASE_MIN_SECONDS
from orchestrator.errors import ConfigError


def check_duration(duration: int, *, obj: str) -> int:
    """`duration` if Azure accepts it as a lease length, else a ConfigError."""
    if not LEASE_MIN_SECONDS <= duration <= LEASE_MAX_SECONDS:
        raise ConfigError(
            f"lease duration {duration}s is out of range",
            obj=obj,
            hint=f"use {LEASE_MIN_SECONDS} to {LEASE_MAX_SECONDS} seconds (Azure's lease range)",
        )
    return duration


def lease_id_or_new(lease_id: str | None, *, obj: str) -> str:
    """The given lease id (it must be a GUID, as Azure requires) or a fresh one."""
    if lease_id is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(lease_id))
    except ValueError as e:
        raise ConfigError(
            f"lease id {lease_id!r} is not a GUID",
            obj=obj,
            hint="pass a lease id that came from acquire_lease, or none to get a new one",
        ) from e


def check_conditions(if_match: str | None, if_absent: bool, *, obj: str) -> None:
    """`if_match` and `if_absent` together can never both hold: a caller bug."""
    if if_match is not None and if_absent:
        raise ValueError(f"{obj}: write with both if_match and if_absent can never succeed")
