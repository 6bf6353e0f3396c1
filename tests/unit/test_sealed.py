"""Sealing a vault secret to a bank's admin key (orchestrator.network.sealed)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.boundaries import Secret
from orchestrator.errors import StateError
from orchestrator.network.sealed import (
    address_of,
    open_sealed,
    public_key_hex,
    publish_admin_key,
    read_admin_key,
    seal,
)
from orchestrator.store.local import LocalStore

NAME = "consortium-pseudonym-secret"


def key() -> Secret:
    return Secret("0x" + secrets.token_hex(32))


def test_only_the_admin_key_opens_it_and_nothing_else_can_be_swapped() -> None:
    admin, other = key(), key()
    public = public_key_hex(admin)
    assert address_of(public) == Account.from_key(admin.value).address
    secret = Secret(secrets.token_hex(32))
    envelope = seal(secret, name=NAME, sender="bank-a", recipient="bank-c", public_key=public)
    assert secret.value not in envelope.decode()
    assert open_sealed(envelope, name=NAME, recipient="bank-c", admin_key=admin) == secret
    with pytest.raises(StateError, match="does not open"):
        open_sealed(envelope, name=NAME, recipient="bank-c", admin_key=other)
    with pytest.raises(StateError, match="does not open"):
        open_sealed(envelope, name=NAME, recipient="bank-d", admin_key=admin)
    forged = json.loads(envelope)
    forged["sender"] = "bank-b"  # bound into the associated data
    with pytest.raises(StateError, match="InvalidTag"):
        open_sealed(json.dumps(forged).encode(), name=NAME, recipient="bank-c", admin_key=admin)


def test_a_published_key_must_derive_the_admitted_admin(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s.sqlite")
    admin = key()
    publish_admin_key(store, "bank-c", admin)
    address = Account.from_key(admin.value).address
    assert read_admin_key(store, "bank-c", admin=address) == public_key_hex(admin)
    with pytest.raises(StateError, match="no admin public key for its admitted admin"):
        read_admin_key(store, "bank-c", admin=Account.from_key(key().value).address)
    with pytest.raises(StateError):
        read_admin_key(store, "bank-d", admin=address)


def test_an_envelope_opens_only_from_the_sender_it_names() -> None:
    admin = key()
    envelope = seal(Secret("s" * 64), name=NAME, sender="bank-a", recipient="bank-c",
                    public_key=public_key_hex(admin))  # fmt: skip
    opened = open_sealed(envelope, name=NAME, recipient="bank-c", admin_key=admin, sender="bank-a")
    assert opened == Secret("s" * 64)
    with pytest.raises(StateError, match="not bank-b"):  # republished by another bank
        open_sealed(envelope, name=NAME, recipient="bank-c", admin_key=admin, sender="bank-b")
