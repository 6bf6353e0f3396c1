"""Sealing a vault secret to a bank's admin key (orchestrator.network.sealed)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.agent.admission import receive_secret
from orchestrator.boundaries import Secret
from orchestrator.errors import StateError
from orchestrator.network.sealed import (
    address_of,
    commitment_blob,
    open_sealed,
    public_key_hex,
    publish_admin_key,
    publish_commitment,
    read_admin_key,
    read_commitment,
    seal,
    sealed_blob,
    secret_commitment,
    share_sealed,
)
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault

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


# -- a joining bank takes only the secret most members commit to ---------------------------


def consortium(tmp_path: Path, faulty: str | None = None) -> tuple[LocalStore, Secret, Secret]:
    """bank-a, bank-b and bank-d hold the secret and commit to it; each seals it to bank-c
    (`faulty` seals another one, and commits to that). The store, bank-c's admin key and
    the consortium's secret."""
    store = LocalStore(tmp_path / "s.sqlite")
    admin, secret = key(), Secret(secrets.token_hex(32))
    for member in ("bank-a", "bank-b", "bank-d"):
        own = Secret(secrets.token_hex(32)) if member == faulty else secret
        publish_commitment(store, member, NAME, own)
        envelope = seal(own, name=NAME, sender=member, recipient="bank-c",
                        public_key=public_key_hex(admin))  # fmt: skip
        store.write(sealed_blob(member, "bank-c"), envelope)
    return store, admin, secret


def test_a_faulty_members_secret_is_refused_and_the_agreed_one_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, admin, secret = consortium(tmp_path, faulty="bank-a")  # listed first
    vault = LocalVault(tmp_path / "vault-c")
    members = ["bank-a", "bank-b", "bank-c", "bank-d"]
    assert receive_secret(store, vault, "bank-c", admin, members=members) is None
    assert vault.get_secret(NAME) == secret
    assert "sealed/bank-a/bank-c.json: bank-a sealed a pseudonym secret that does not match" in (
        caplog.text
    )
    assert read_commitment(store, "bank-c", NAME) == secret_commitment(NAME, secret)


def test_without_a_majority_of_commitments_nothing_is_taken(tmp_path: Path) -> None:
    store, admin, secret = consortium(tmp_path)
    three_of_five = ["bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "bank-f"]
    vault = LocalVault(tmp_path / "vault-c")
    assert receive_secret(store, vault, "bank-c", admin, members=three_of_five) is None
    assert vault.get_secret(NAME) == secret
    three_of_six = [*three_of_five, "bank-g"]  # bank-e, -f and -g publish nothing
    elsewhere = LocalVault(tmp_path / "vault-c2")
    waits = receive_secret(store, elsewhere, "bank-c", admin, members=three_of_six)
    assert waits == (
        "the consortium's pseudonym secret: 3 of the 6 other members publish the same "
        f"commitment to {NAME} (4 needed; 3 publish one)"
    )
    assert elsewhere.get_secret(NAME) is None


def test_a_commitment_names_its_member_and_secret(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s.sqlite")
    secret = Secret(secrets.token_hex(32))
    publish_commitment(store, "bank-a", NAME, secret)
    assert read_commitment(store, "bank-a", NAME) == secret_commitment(NAME, secret)
    assert secret.value not in store.read(commitment_blob("bank-a", NAME)).data.decode()  # type: ignore[union-attr]
    store.write(commitment_blob("bank-b", NAME), store.read(commitment_blob("bank-a", NAME)).data)  # type: ignore[union-attr]
    assert read_commitment(store, "bank-b", NAME) is None  # bank-a's, copied: not bank-b's
    assert secret_commitment(NAME, secret) != secret_commitment("other-secret", secret)


def test_a_bank_that_shares_the_secret_commits_to_it_so_a_two_bank_joiner_takes_it(
    tmp_path: Path,
) -> None:
    """A founder whose secret was created after its leader's duties (Azure: `operate init`)
    has published no commitment until it shares: sharing must publish it."""
    store = LocalStore(tmp_path / "s.sqlite")
    secret, admin = key(), key()
    assert read_commitment(store, "bank-a", NAME) is None
    blob = share_sealed(store, secret, name=NAME, sender="bank-a", recipient="bank-b",
                        public_key=public_key_hex(admin))  # fmt: skip
    assert blob == sealed_blob("bank-a", "bank-b")
    vault = LocalVault(tmp_path / "vault-b")
    assert receive_secret(store, vault, "bank-b", admin, members=["bank-a", "bank-b"]) is None
    assert vault.get_secret(NAME) == secret
