"""The local vault keeps no plaintext on disk, guards its master key like ssh guards a
private key, detects a wrong key and tampering apart, and loses no write when several
processes write at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from orchestrator.boundaries import Secret
from orchestrator.errors import AccessDenied, ConfigError, StateError
from orchestrator.vault.local import LocalVault

PLAIN = "4c0883a69102937d6231471b5dbb6204fe512961708279f2e3e8a5d4b8e3e8a5"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def vault(tmp_path: Path) -> LocalVault:
    v = LocalVault(tmp_path / "vault")
    v.set_secret("validator-1-key", Secret(PLAIN))
    return v


def test_no_file_holds_the_plaintext(vault: LocalVault) -> None:
    vault.set_secret("validator-2-key", Secret(PLAIN[::-1]))
    files = sorted(p.name for p in vault.directory.iterdir())
    assert files == [".lock", "master.key", "secrets.json"]  # no temporary file left over
    for path in vault.directory.iterdir():
        data = path.read_bytes()
        assert PLAIN.encode() not in data, path
        assert PLAIN[::-1].encode() not in data, path
    assert vault.get_secret("validator-1-key") == Secret(PLAIN)


def test_directory_and_files_are_private(vault: LocalVault) -> None:
    assert mode(vault.directory) == 0o700
    for name in ("master.key", "secrets.json", ".lock"):
        assert mode(vault.directory / name) == 0o600, name
    assert len(vault.master_key_path.read_bytes()) == 32


def test_reading_an_empty_vault_creates_nothing(tmp_path: Path) -> None:
    vault = LocalVault(tmp_path / "nothing-yet")
    assert vault.get_secret("anything") is None
    assert not vault.directory.exists()


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660])
def test_master_key_open_to_others_is_refused(vault: LocalVault, loose: int) -> None:
    vault.master_key_path.chmod(loose)
    with pytest.raises(ConfigError, match="open to group/others") as caught:
        vault.get_secret("validator-1-key")
    assert caught.value.hint == f"chmod 600 {vault.master_key_path}"
    with pytest.raises(ConfigError):
        vault.set_secret("validator-1-key", Secret("x"))
    vault.master_key_path.chmod(0o600)
    assert vault.get_secret("validator-1-key") == Secret(PLAIN)


def test_master_key_as_symlink_is_refused(vault: LocalVault, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.key"
    vault.master_key_path.rename(real)
    vault.master_key_path.symlink_to(real)
    with pytest.raises(ConfigError, match="master key"):
        vault.get_secret("validator-1-key")


def test_wrong_master_key_is_access_denied_naming_the_file(vault: LocalVault) -> None:
    vault.master_key_path.write_bytes(os.urandom(32))
    with pytest.raises(AccessDenied, match="does not decrypt") as caught:
        vault.get_secret("validator-1-key")
    assert caught.value.obj == str(vault.secrets_path)
    with pytest.raises(AccessDenied):  # nor is the file rewritten under the wrong key
        vault.set_secret("validator-2-key", Secret("x"))
    with pytest.raises(AccessDenied):  # a name that is absent is no way around it
        vault.get_secret("never-set")


def test_values_swapped_between_names_are_detected(vault: LocalVault) -> None:
    vault.set_secret("validator-2-key", Secret("the other key"))
    data = json.loads(vault.secrets_path.read_text())
    box = data["secrets"]
    box["validator-1-key"], box["validator-2-key"] = box["validator-2-key"], box["validator-1-key"]
    vault.secrets_path.write_text(json.dumps(data))
    for name in ("validator-1-key", "validator-2-key"):
        with pytest.raises(StateError, match="does not decrypt under its own name") as caught:
            vault.get_secret(name)
        assert name in (caught.value.obj or "")


def test_altered_value_is_detected(vault: LocalVault) -> None:
    data = json.loads(vault.secrets_path.read_text())
    token = data["secrets"]["validator-1-key"]
    data["secrets"]["validator-1-key"] = token[:-6] + (
        "AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB"
    )
    vault.secrets_path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="altered"):
        vault.get_secret("validator-1-key")


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'{"format": "something-else", "secrets": {}}']
)
def test_corrupt_file_is_state_error(vault: LocalVault, content: bytes) -> None:
    vault.secrets_path.write_bytes(content)
    with pytest.raises(StateError, match="corrupt") as caught:
        vault.get_secret("validator-1-key")
    assert caught.value.obj == str(vault.secrets_path)


def test_missing_master_key_is_never_replaced_by_a_new_one(vault: LocalVault) -> None:
    vault.master_key_path.unlink()
    with pytest.raises(StateError, match="master key file is missing"):
        vault.get_secret("validator-1-key")
    with pytest.raises(StateError, match="master key file is missing"):
        vault.set_secret("validator-2-key", Secret("x"))
    assert not vault.master_key_path.exists()


def test_truncated_master_key_is_state_error(vault: LocalVault) -> None:
    vault.master_key_path.write_bytes(b"short")
    with pytest.raises(StateError, match="5 bytes"):
        vault.get_secret("validator-1-key")


def _writer(directory: str, worker: int, count: int, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    vault = LocalVault(Path(directory))
    for i in range(count):
        vault.set_secret(f"w{worker}-s{i}", Secret(f"value {worker}/{i}"))


def test_concurrent_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    workers, count = 4, 15
    directory = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_writer, args=(str(directory), w, count, barrier))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * workers
    vault = LocalVault(directory)
    for w in range(workers):
        for i in range(count):
            assert vault.get_secret(f"w{w}-s{i}") == Secret(f"value {w}/{i}")
    stored = json.loads(vault.secrets_path.read_text())["secrets"]
    assert len(stored) == workers * count
