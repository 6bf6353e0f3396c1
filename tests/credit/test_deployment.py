"""The consortium's pseudonym secret, the contracts record and the resolver's refusals,
without a chain: real local vaults and a real local store in tmp dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.boundaries import Secret, Store, Vault
from orchestrator.config import StoreSettings, VaultSettings, load_config
from orchestrator.credit.deployment import (
    CONTRACTS_BLOB,
    ConsortiumResolver,
    RegistryRecord,
    read_registry,
)
from orchestrator.credit.pseudonym import share_secret
from orchestrator.errors import ConfigError, StateError
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.names import NETWORK_INFO, PSEUDONYM_SECRET_NAME
from orchestrator.wiring import make_store, make_vault
from tests.helpers.ports import consortium_yaml

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
ADMIN_A, ADMIN_B = "0x" + "a1" * 20, "0x" + "b1" * 20


def vault(path: Path) -> Vault:
    return make_vault(VaultSettings(kind="local", path=path))


def store(path: Path) -> Store:
    return make_store(StoreSettings(kind="local", path=path / "store.sqlite"))


def secret_of(v: Vault) -> str | None:
    s = v.get_secret(PSEUDONYM_SECRET_NAME)
    return None if s is None else s.value


def test_share_secret_creates_one_value_for_all_then_changes_nothing(tmp_path: Path) -> None:
    vaults = {m: vault(tmp_path / m) for m in ("bank-a", "bank-b", "bank-c")}
    assert share_secret(vaults) is True
    values = {secret_of(v) for v in vaults.values()}
    assert len(values) == 1
    (value,) = values
    assert value is not None and len(value) == 64
    assert share_secret(vaults) is False
    assert {secret_of(v) for v in vaults.values()} == {value}


def test_share_secret_copies_the_agreed_value_and_refuses_two(tmp_path: Path) -> None:
    a, b, c = (vault(tmp_path / m) for m in ("a", "b", "c"))
    agreed = "s" * 40
    a.set_secret(PSEUDONYM_SECRET_NAME, Secret(agreed))
    assert share_secret({"a": a, "b": b}) is False  # nothing new: a's value is copied
    assert secret_of(b) == agreed

    c.set_secret(PSEUDONYM_SECRET_NAME, Secret("t" * 40))
    with pytest.raises(StateError, match="hold different consortium pseudonym secrets") as e:
        share_secret({"a": a, "b": b, "c": c})
    assert e.value.hint is not None and "a, b, c" in e.value.hint
    assert "s" * 40 not in str(e.value) and "t" * 40 not in str(e.value)


def test_a_failed_up_leaves_no_state_and_no_vault(short_dir: Path, geth: str) -> None:
    """bank-b and bank-c keep their vaults elsewhere, with different secrets: `up` refuses
    before any agent starts, and leaves neither the state dir nor a staging dir."""
    config = short_dir / "c.yaml"
    config.write_text(consortium_yaml({"bank-a": 1, "bank-b": 1, "bank-c": 1}))
    outside = {m: short_dir / "elsewhere" / m for m in ("bank-b", "bank-c")}
    vault(outside["bank-b"]).set_secret(PSEUDONYM_SECRET_NAME, Secret("b" * 40))
    vault(outside["bank-c"]).set_secret(PSEUDONYM_SECRET_NAME, Secret("c" * 40))
    root = short_dir / "state"
    local = LocalConsortium(
        root,
        geth=geth,
        vault=lambda m: VaultSettings(kind="local", path=outside.get(m, root / "vaults" / m)),
    )
    with pytest.raises(StateError, match="different consortium pseudonym secrets"):
        local.up(config, timeout=5)
    assert not root.exists()
    assert sorted(p.name for p in short_dir.iterdir()) == ["c.yaml", "elsewhere"]
    assert secret_of(vault(outside["bank-b"])) == "b" * 40


def test_create_puts_the_secret_in_every_vault_staged_and_outside(short_dir: Path) -> None:
    """A vault under the state dir is written in the staging dir and renamed in with it;
    one elsewhere that already holds the consortium's secret gives it to the others."""
    config = short_dir / "c.yaml"
    config.write_text(consortium_yaml({"bank-a": 1, "bank-b": 1}))
    outside = short_dir / "elsewhere"
    vault(outside).set_secret(PSEUDONYM_SECRET_NAME, Secret("x" * 40))
    root = short_dir / "state"
    local = LocalConsortium(
        root,
        vault=lambda m: VaultSettings(
            kind="local", path=outside if m == "bank-b" else root / "vaults" / m
        ),
    )
    local._create(load_config(config), "geth")
    assert secret_of(vault(root / "vaults" / "bank-a")) == "x" * 40
    assert not any(p.name.startswith(".state.creating-") for p in short_dir.iterdir())


def record(**changes: object) -> RegistryRecord:
    fields: dict[str, object] = {
        "address": A,
        "deployer": B,
        "governance": A,
        "tx_hash": "0x" + "11" * 32,
        "block_number": 7,
        "source_sha256": "ab" * 32,
        "deployed_at": "2024-05-31T12:00:00+00:00",
        "chain_id": 7272,
        "genesis_sha256": "cd" * 32,
    }
    return RegistryRecord(**(fields | changes))  # type: ignore[arg-type]


def test_contracts_record_round_trips_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert read_registry(s) is None
    s.write(CONTRACTS_BLOB, record().as_json())
    assert read_registry(s) == record()
    doc = json.loads(record().as_json())
    assert doc["contracts"]["CreditRegistry"]["address"] == A and doc["chain_id"] == 7272

    s.write(CONTRACTS_BLOB, json.dumps({**doc, "version": 99}).encode())
    with pytest.raises(StateError, match="version 99 is not supported"):
        read_registry(s)
    del doc["contracts"]
    s.write(CONTRACTS_BLOB, json.dumps(doc).encode())
    with pytest.raises(StateError, match="malformed contracts record") as e:
        read_registry(s)
    assert e.value.obj == CONTRACTS_BLOB


def network_info(s: Store) -> None:
    members = {
        "bank-a": {"member": "bank-a", "signers": [B], "tx_account": A, "admin": ADMIN_A},
        "bank-b": {"member": "bank-b", "signers": [A], "tx_account": B, "admin": ADMIN_B},
    }
    doc = {
        "version": 2,
        "chain_id": 7272,
        "block_period": 2,
        "founder": "bank-a",
        "genesis_sha256": "cd" * 32,
        "members": members,
    }
    s.write(NETWORK_INFO, json.dumps(doc).encode())


def test_resolver_names_the_banks_and_what_is_missing(tmp_path: Path) -> None:
    s = store(tmp_path)
    resolver = ConsortiumResolver(
        s,
        endpoints={"bank-a": "http://127.0.0.1:1", "bank-b": "http://127.0.0.1:2"},
        vault=lambda m: vault(tmp_path / m),
        check_code=False,
    )
    with pytest.raises(ConfigError, match="unknown bank 'bank-c'; the consortium's banks are "):
        resolver.resolve("bank-c")
    with pytest.raises(StateError, match="has not published its network information"):
        resolver.resolve("bank-a")
    network_info(s)
    with pytest.raises(StateError, match="no credit registry is recorded") as e:
        resolver.resolve("bank-a")
    assert e.value.hint is not None and "poactl contracts deploy" in e.value.hint
    s.write(CONTRACTS_BLOB, record().as_json())
    with pytest.raises(StateError, match="no transaction key for bank-a in its vault"):
        resolver.resolve("bank-a")
    vault(tmp_path / "bank-a").set_secret("bank-a-tx-key", Secret("0x" + "01" * 32))
    with pytest.raises(StateError, match="no consortium pseudonym secret in bank-a's vault"):
        resolver.resolve("bank-a")
    vault(tmp_path / "bank-a").set_secret(PSEUDONYM_SECRET_NAME, Secret("p" * 40))
    access = resolver.resolve("bank-a")
    assert access.rpc_url == "http://127.0.0.1:1" and access.registry == A
    assert access.names == {A: "bank-a", ADMIN_A: "bank-a", B: "bank-b", ADMIN_B: "bank-b"}
    assert access.account_key.value == "0x" + "01" * 32
