"""One contract for every Vault backend: the local encrypted file, and Azure Key Vault
through our `AzureKeyVault` on the Key Vault emulator (tests/services/keyvault_emulator.py).
Then the Azure backend's error paths: each SDK failure must
become the error class the caller acts on, within the client's timeouts."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import ManagedIdentityCredential
from eth_keys import keys as eth_keys

from orchestrator.boundaries import Secret, Vault
from orchestrator.errors import AccessDenied, ConfigError, ServiceUnavailable, StateError
from orchestrator.vault.azure_kv import AzureKeyVault
from orchestrator.vault.local import LocalVault
from tests.services.keyvault_emulator import KeyVaultEmulator, KeyVaultService

BACKENDS = ["local", "emulator"]
AZURE = ["emulator"]
SERVICE_FIXTURE = {"emulator": "keyvault_emulator"}
VALUE = "0x4c0883a69102937d6231471b5dbb6204fe512961708279f2e3e8a5d4b8e3e8a5\nline two: ünïcode"


def fresh() -> str:
    """A name no other test uses (the emulators live for the whole session)."""
    return f"t-{uuid.uuid4().hex[:16]}"


def service(request: pytest.FixtureRequest, kind: str) -> KeyVaultService:
    svc: KeyVaultService = request.getfixturevalue(SERVICE_FIXTURE[kind])
    return svc


@pytest.fixture(params=BACKENDS)
def vault(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Vault]:
    if request.param == "local":
        yield LocalVault(tmp_path / "vault")
        return
    with service(request, request.param).open_vault(monkeypatch) as azure_vault:
        yield azure_vault


@pytest.fixture(params=AZURE)
def kv(request: pytest.FixtureRequest) -> KeyVaultService:
    return service(request, request.param)


def emulator_of(kv: KeyVaultService) -> KeyVaultEmulator:
    if kv.emulator is None:
        pytest.skip(f"{kv.kind} has no fault injection or identities to refuse")
    return kv.emulator


# -- the contract ------------------------------------------------------------------------


def test_missing_secret_is_none(vault: Vault) -> None:
    assert vault.get_secret(fresh()) is None


def test_set_then_get_returns_the_value(vault: Vault) -> None:
    name = fresh()
    vault.set_secret(name, Secret(VALUE))
    assert vault.get_secret(name) == Secret(VALUE)


def test_set_again_returns_the_new_value(vault: Vault) -> None:
    name = fresh()
    vault.set_secret(name, Secret("first"))
    vault.set_secret(name, Secret("second"))
    got = vault.get_secret(name)
    assert got is not None
    assert got.value == "second"


def test_names_are_case_insensitive_like_key_vault(vault: Vault) -> None:
    name = fresh()
    vault.set_secret(name.upper(), Secret("a"))
    assert vault.get_secret(name) == Secret("a")
    vault.set_secret(name, Secret("b"))
    assert vault.get_secret(name.upper()) == Secret("b")


def test_secrets_are_separate(vault: Vault) -> None:
    a, b = fresh(), fresh()
    vault.set_secret(a, Secret("for a"))
    vault.set_secret(b, Secret("for b"))
    assert (vault.get_secret(a), vault.get_secret(b)) == (Secret("for a"), Secret("for b"))


def test_longest_valid_name_works(vault: Vault) -> None:
    name = fresh() + "x" * (127 - len(fresh()))
    assert len(name) == 127
    vault.set_secret(name, Secret("long"))
    assert vault.get_secret(name) == Secret("long")


@pytest.mark.parametrize("bad", ["", "under_score", "x" * 128, "sp ace", "a/b", "ümlaut"])
def test_invalid_names_are_config_errors(vault: Vault, bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid secret name"):
        vault.get_secret(bad)
    with pytest.raises(ConfigError, match="not a valid secret name"):
        vault.set_secret(bad, Secret("v"))


def test_values_never_show_in_repr_or_logs(vault: Vault, caplog: pytest.LogCaptureFixture) -> None:
    name, value = fresh(), f"hunter2-{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG):
        vault.set_secret(name, Secret(value))
        got = vault.get_secret(name)
    assert got is not None and got.value == value
    for shown in (repr(got), str(got), f"{got}", repr([got]), repr(vault)):
        assert value not in shown
    assert caplog.records, "expected the backend (or the SDK) to log something at DEBUG"
    assert value not in caplog.text


# -- signing keys: they sign, and never leave -----------------------------------------


def _recovers_to(public: bytes, digest: bytes, rs: bytes) -> bool:
    """Whether r‖s over `digest` verifies for `public` with either recovery id."""
    r, s_ = int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")
    for v in (0, 1):
        try:
            key = eth_keys.Signature(vrs=(v, r, s_)).recover_public_key_from_msg_hash(digest)
        except Exception:
            continue
        if key.to_bytes() == public:
            return True
    return False


def test_a_missing_signing_key_is_none(vault: Vault) -> None:
    assert vault.signing_key(fresh()) is None


def test_a_created_key_signs_digests_that_verify(vault: Vault) -> None:
    name = fresh()
    public = vault.create_signing_key(name)
    assert len(public) == 64
    assert vault.signing_key(name) == public
    assert vault.create_signing_key(name) == public  # a second create keeps the key
    for _ in range(4):  # a random nonce each time; s may land in either half
        digest = secrets.token_bytes(32)
        rs = vault.sign_digest(name, digest)
        assert len(rs) == 64
        assert _recovers_to(public, digest, rs)


def test_a_signing_key_is_not_a_secret(vault: Vault) -> None:
    name = fresh()
    vault.create_signing_key(name)
    assert vault.get_secret(name) is None


def test_signing_with_a_missing_key_is_a_state_error(vault: Vault) -> None:
    with pytest.raises(StateError, match="no signing key"):
        vault.sign_digest(fresh(), bytes(32))


def test_keys_are_separate(vault: Vault) -> None:
    assert vault.create_signing_key(fresh()) != vault.create_signing_key(fresh())


def test_the_local_vault_keeps_no_key_in_clear(tmp_path: Path) -> None:
    local = LocalVault(tmp_path / "vault")
    name = fresh()
    local.create_signing_key(name)
    private = local._private_key(name)
    assert private is not None
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    for file in (tmp_path / "vault").iterdir():
        data = file.read_bytes()
        assert scalar not in data and scalar.hex().encode() not in data, file


def test_an_emulated_key_vault_signs_through_the_sdks_cryptography_client(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emulator_of(kv)
    with kv.open_vault(monkeypatch) as azure_vault:
        name = fresh()
        public = azure_vault.create_signing_key(name)
        before = emulator.sign_requests
        digest = secrets.token_bytes(32)
        assert _recovers_to(public, digest, azure_vault.sign_digest(name, digest))
        assert emulator.sign_requests == before + 1  # signed by the vault, not locally


# -- the Azure backend's error paths ---------------------------------------------------------


def test_nothing_listening_is_service_unavailable_quickly() -> None:
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{held.getsockname()[1]}"
        with (
            ManagedIdentityCredential() as credential,
            AzureKeyVault(url, credential=credential) as vault,
        ):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as caught:
                vault.get_secret("anything")
    assert time.monotonic() - started < 3
    assert url in str(caught.value)


def test_silent_server_is_service_unavailable_within_the_timeouts() -> None:
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        with (
            ManagedIdentityCredential() as credential,
            AzureKeyVault(
                url, credential=credential, connection_timeout=1, read_timeout=1
            ) as vault,
        ):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                vault.set_secret("anything", Secret("v"))
            elapsed = time.monotonic() - started
    assert elapsed < 4, f"no retries, one timeout: took {elapsed:.1f}s"


def test_plain_http_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a Key Vault URL"):
        AzureKeyVault("http://127.0.0.1:1", credential=ManagedIdentityCredential())


@pytest.mark.parametrize("status", [429, 500, 503])
def test_busy_vault_is_service_unavailable_without_retry(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    emulator = emulator_of(kv)
    with kv.open_vault(monkeypatch) as vault:
        name = fresh()
        vault.set_secret(name, Secret("v"))
        before = emulator.vault_requests
        emulator.fail_next(status)
        with pytest.raises(ServiceUnavailable, match=str(status)):
            vault.get_secret(name)
        assert emulator.vault_requests == before + 1  # retry_total=0: the caller retries
        assert vault.get_secret(name) == Secret("v")


def test_token_from_an_untrusted_issuer_is_access_denied(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_of(kv)
    with (
        kv.open_vault(monkeypatch, untrusted=True) as vault,
        pytest.raises(AccessDenied, match="401") as caught,
    ):
        vault.get_secret(fresh())
    assert "Key Vault Secrets" in (caught.value.hint or "")


def test_identity_without_a_role_is_access_denied(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_of(kv)
    with (
        kv.open_vault(monkeypatch, client_id="no-role") as vault,
        pytest.raises(AccessDenied, match="403"),
    ):
        vault.get_secret(fresh())


def test_reader_identity_reads_but_cannot_write(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_of(kv)
    name = fresh()
    with kv.open_vault(monkeypatch) as officer:
        officer.set_secret(name, Secret("shared"))
    with kv.open_vault(monkeypatch, client_id="reader") as reader:
        assert reader.get_secret(name) == Secret("shared")
        with pytest.raises(AccessDenied, match="write"):
            reader.set_secret(name, Secret("mine"))


def test_machine_without_that_identity_is_access_denied(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_of(kv)
    with (
        kv.open_vault(monkeypatch, client_id="not-assigned-to-this-vm") as vault,
        pytest.raises(AccessDenied, match="could not get a token") as caught,
    ):
        vault.get_secret(fresh())
    assert "Identity not found" in str(caught.value)
    assert "managed identity" in (caught.value.hint or "")


def test_deleted_but_recoverable_name_cannot_be_set(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emulator_of(kv)
    name = fresh()
    with kv.open_vault(monkeypatch) as vault:
        vault.set_secret(name, Secret("old"))
        emulator.soft_delete(name)
        assert vault.get_secret(name) is None
        with pytest.raises(StateError, match="deleted but still recoverable") as caught:
            vault.set_secret(name, Secret("new"))
    assert "recover" in (caught.value.hint or "") and "purge" in (caught.value.hint or "")


def test_untrusted_certificate_is_a_config_error(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator_of(kv)
    with (
        kv.open_vault(monkeypatch, connection_verify=True) as vault,
        pytest.raises(ConfigError, match="certificate"),
    ):
        vault.get_secret(fresh())


def test_challenge_for_another_domain_is_a_config_error(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production keeps verify_challenge_resource on: a vault URL whose challenge names
    another domain is refused (the emulator's 127.0.0.1 is such a URL)."""
    with (
        kv.open_vault(monkeypatch, verify_challenge_resource=True) as vault,
        pytest.raises(ConfigError, match="challenge"),
    ):
        vault.get_secret(fresh())


def test_concurrent_clients_on_one_vault(
    kv: KeyVaultService, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [fresh() for _ in range(8)]
    errors: list[BaseException] = []
    with kv.open_vault(monkeypatch) as vault:

        def work(name: str) -> None:
            try:
                vault.set_secret(name, Secret(name[::-1]))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert [vault.get_secret(n) for n in names] == [Secret(n[::-1]) for n in names]
