"""The consortium's shared data (orchestrator.network) on the real embedded backends:
a SQLite `LocalStore` and an encrypted `LocalVault`, both under `tmp_path`."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.boundaries import Lease, Store
from orchestrator.config import Consortium, parse_config
from orchestrator.errors import StateError
from orchestrator.geth.keys import address_of_public_key
from orchestrator.network.create import (
    MemberInfo,
    create_network,
    ensure_member_identities,
    publish_member,
    read_genesis,
    read_member,
    read_network,
)
from orchestrator.network.names import (
    GENESIS,
    NETWORK_INFO,
    member_blob,
    tx_key_name,
    validator_key_name,
)
from orchestrator.network.peers import ENODE, publish_enode, read_enodes
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault
from tests.helpers.stores import DelegatingStore

CONSORTIUM = "chain_id: 4242\nblock_period: 3\nmembers: {bank-a: {validators: 2}, bank-b: {}}\n"
ENODE_A = "enode://" + "a1" * 64 + "@127.0.0.1:30303"
ENODE_B = "enode://" + "b2" * 64 + "@10.0.0.7:30304"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "s.sqlite")


@pytest.fixture
def consortium() -> Consortium:
    return parse_config(CONSORTIUM, source="consortium.yaml")


def _vault(tmp_path: Path, member: str) -> LocalVault:
    return LocalVault(tmp_path / "v" / member)


def _publish_all(tmp_path: Path, store: Store, consortium: Consortium) -> dict[str, MemberInfo]:
    infos = {}
    for member, spec in consortium.settings.members.items():
        infos[member] = ensure_member_identities(_vault(tmp_path, member), member, spec.validators)
        publish_member(store, infos[member])
    return infos


# -- a member's identities -------------------------------------------------------------


def test_ensure_member_identities_creates_keys_in_the_vault(tmp_path: Path) -> None:
    vault = _vault(tmp_path, "bank-a")
    info = ensure_member_identities(vault, "bank-a", 2)
    assert info.member == "bank-a"
    assert len(info.signers) == 2
    assert len(set(info.signers) | {info.tx_account}) == 3  # three distinct keys
    for i, signer in enumerate(info.signers):
        key = vault.get_secret(validator_key_name("bank-a", i))
        assert key is not None
        assert Account.from_key(key.value).address == signer
    tx_key = vault.get_secret(tx_key_name("bank-a"))
    assert tx_key is not None
    assert Account.from_key(tx_key.value).address == info.tx_account
    assert vault.get_secret(validator_key_name("bank-a", 2)) is None  # only 2 identities


def test_in_keys_custody_the_validator_keys_are_vault_keys_not_secrets(
    tmp_path: Path,
) -> None:
    vault = _vault(tmp_path, "bank-a")
    info = ensure_member_identities(vault, "bank-a", 2, custody="keys")
    for i, signer in enumerate(info.signers):
        name = validator_key_name("bank-a", i)
        assert vault.get_secret(name) is None  # nothing to read out
        public = vault.signing_key(name)
        assert public is not None
        assert address_of_public_key(public) == signer
    again = ensure_member_identities(vault, "bank-a", 2, custody="keys")
    assert again == info  # idempotent: the same keys, none made anew


def test_ensure_member_identities_is_idempotent(tmp_path: Path) -> None:
    vault = _vault(tmp_path, "bank-a")
    first = ensure_member_identities(vault, "bank-a", 2)
    written = vault.secrets_path.read_bytes()  # every write re-encrypts with a fresh nonce
    again = ensure_member_identities(vault, "bank-a", 2)
    assert again == first
    assert vault.secrets_path.read_bytes() == written  # the second call wrote nothing
    # A new leader on another machine, with the same vault, finds the same identities.
    assert ensure_member_identities(LocalVault(vault.directory), "bank-a", 2) == first


def test_ensure_member_identities_adds_only_what_is_missing(tmp_path: Path) -> None:
    vault = _vault(tmp_path, "bank-a")
    two = ensure_member_identities(vault, "bank-a", 2)
    three = ensure_member_identities(vault, "bank-a", 3)
    assert three.signers[:2] == two.signers
    assert three.tx_account == two.tx_account
    assert len(set(three.signers)) == 3


def test_publish_member_twice_is_fine(tmp_path: Path, store: LocalStore) -> None:
    info = ensure_member_identities(_vault(tmp_path, "bank-a"), "bank-a", 2)
    publish_member(store, info)
    first = store.read(member_blob("bank-a"))
    publish_member(store, info)
    assert store.read(member_blob("bank-a")) == first  # not rewritten: same etag
    assert read_member(store, "bank-a") == info


def test_publishing_different_identities_for_a_member_is_refused(
    tmp_path: Path, store: LocalStore
) -> None:
    publish_member(store, ensure_member_identities(_vault(tmp_path, "bank-a"), "bank-a", 2))
    other = ensure_member_identities(LocalVault(tmp_path / "another-vault"), "bank-a", 2)
    with pytest.raises(StateError) as caught:
        publish_member(store, other)
    assert caught.value.obj == member_blob("bank-a")
    assert "differ from the keys in its vault" in str(caught.value)
    assert "restore the vault" in str(caught.value)
    assert read_member(store, "bank-a") != other  # the first publication stands


def test_read_member_of_an_unpublished_member_is_none(store: LocalStore) -> None:
    assert read_member(store, "bank-z") is None


# -- the network -----------------------------------------------------------------------


def test_create_network_waits_until_every_member_has_published(
    tmp_path: Path, store: LocalStore, consortium: Consortium
) -> None:
    a = ensure_member_identities(_vault(tmp_path, "bank-a"), "bank-a", 2)
    publish_member(store, a)
    assert create_network(store, consortium) is None
    assert store.read(GENESIS) is None
    assert store.read(NETWORK_INFO) is None
    assert read_network(store) is None

    b = ensure_member_identities(_vault(tmp_path, "bank-b"), "bank-b", 2)
    publish_member(store, b)
    info = create_network(store, consortium)
    assert info is not None

    genesis = store.read(GENESIS)
    assert genesis is not None
    assert info.genesis_sha256 == hashlib.sha256(genesis.data).hexdigest()
    doc = json.loads(genesis.data)
    assert doc["config"]["chainId"] == 4242
    assert doc["config"]["clique"]["period"] == 3
    extra = bytes.fromhex(doc["extraData"][2:])
    signers = a.signers + b.signers
    assert len(extra) == 32 + 20 * len(signers) + 65
    listed = [extra[32 + 20 * i : 52 + 20 * i] for i in range(len(signers))]
    assert listed == sorted(bytes.fromhex(s[2:]) for s in signers)
    assert extra[-65:] == bytes(65)

    assert info.chain_id == 4242
    assert info.block_period == 3
    assert info.founder == "bank-a"
    assert info.members == {"bank-a": a, "bank-b": b}
    assert info.signers("bank-b") == b.signers
    assert info.all_signers == [*a.signers, *b.signers]
    assert read_network(store) == info
    assert create_network(store, consortium) == info  # a second call changes nothing
    assert store.read(GENESIS) == genesis


class RacingStore(DelegatingStore):
    """A real store whose genesis writes wait until `parties` callers are about to write,
    so racing leaders really race; it counts the writes that took effect."""

    def __init__(self, inner: Store, barrier: threading.Barrier) -> None:
        super().__init__(inner)
        self.barrier = barrier
        self.genesis_writes: list[str | None] = []

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        if name == GENESIS:
            self.barrier.wait(timeout=10)
        etag = super().write(name, data, if_match=if_match, if_absent=if_absent, lease=lease)
        if name == GENESIS:
            self.genesis_writes.append(etag)
        return etag


def test_two_concurrent_create_network_calls_publish_one_genesis(
    tmp_path: Path, consortium: Consortium
) -> None:
    path = tmp_path / "s.sqlite"
    _publish_all(tmp_path, LocalStore(path), consortium)
    barrier = threading.Barrier(2)
    stores = [RacingStore(LocalStore(path), barrier) for _ in range(2)]  # two leaders
    results: list[object] = [None, None]
    errors: list[BaseException] = []

    def leader(i: int) -> None:
        try:
            results[i] = create_network(stores[i], consortium)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=leader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    writes = stores[0].genesis_writes + stores[1].genesis_writes
    assert len(writes) == 2  # both tried ...
    assert sum(etag is not None for etag in writes) == 1  # ... and exactly one wrote
    assert results[0] is not None
    assert results[0] == results[1]
    assert results[0] == read_network(LocalStore(path))


def test_read_genesis_returns_the_published_bytes(
    tmp_path: Path, store: LocalStore, consortium: Consortium
) -> None:
    _publish_all(tmp_path, store, consortium)
    info = create_network(store, consortium)
    assert info is not None
    blob = store.read(GENESIS)
    assert blob is not None
    assert read_genesis(store, info) == blob.data


def test_read_genesis_refuses_a_tampered_genesis(
    tmp_path: Path, store: LocalStore, consortium: Consortium
) -> None:
    _publish_all(tmp_path, store, consortium)
    info = create_network(store, consortium)
    assert info is not None
    blob = store.read(GENESIS)
    assert blob is not None
    doc = json.loads(blob.data)
    doc["alloc"]["0x" + "66" * 20] = {"balance": hex(10**24)}  # a gift to someone
    store.write(GENESIS, json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n")
    with pytest.raises(StateError) as caught:
        read_genesis(store, info)
    assert caught.value.obj == GENESIS
    assert "does not match the network information" in str(caught.value)


def test_read_genesis_refuses_a_missing_genesis(
    tmp_path: Path, store: LocalStore, consortium: Consortium
) -> None:
    _publish_all(tmp_path, store, consortium)
    info = create_network(store, consortium)
    assert info is not None
    other = LocalStore(tmp_path / "other.sqlite")  # a store without the genesis
    with pytest.raises(StateError, match="missing or does not match"):
        read_genesis(other, info)


def test_network_information_of_another_version_is_refused(store: LocalStore) -> None:
    store.write(NETWORK_INFO, json.dumps({"version": 99}).encode())
    with pytest.raises(StateError, match="version 99 is not supported") as caught:
        read_network(store)
    assert caught.value.obj == NETWORK_INFO
    assert "upgrade poactl" in str(caught.value)


def test_malformed_network_information_is_a_state_error(store: LocalStore) -> None:
    store.write(NETWORK_INFO, b"{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        read_network(store)
    store.write(NETWORK_INFO, json.dumps({"version": 2, "chain_id": 1}).encode())
    with pytest.raises(StateError, match="malformed network information"):
        read_network(store)


def test_a_network_from_before_governance_names_the_way_out(store: LocalStore) -> None:
    """Version 1 (no admins, no Governance in the genesis) cannot be upgraded in place."""
    store.write(NETWORK_INFO, json.dumps({"version": 1, "chain_id": 1}).encode())
    with pytest.raises(StateError, match="created by an older poactl, before on-chain") as e:
        read_network(store)
    assert "`poactl destroy`" in str(e.value) and e.value.obj == NETWORK_INFO
    old_member = {"member": "bank-a", "signers": [], "tx_account": "0x" + "11" * 20}
    store.write("members/bank-a.json", json.dumps(old_member).encode())
    with pytest.raises(StateError, match="before on-chain governance"):
        read_member(store, "bank-a")


# -- enodes ----------------------------------------------------------------------------


def test_publish_enode_writes_once_and_rewrites_on_change(store: LocalStore) -> None:
    publish_enode(store, "bank-a-1", "bank-a", ENODE_A)
    first = store.read("enodes/bank-a/bank-a-1.json")
    assert first is not None
    publish_enode(store, "bank-a-1", "bank-a", ENODE_A)
    assert store.read("enodes/bank-a/bank-a-1.json") == first  # same record: not rewritten
    publish_enode(store, "bank-a-1", "bank-a", ENODE_B)  # a new node key or address
    second = store.read("enodes/bank-a/bank-a-1.json")
    assert second is not None
    assert second.etag != first.etag
    assert read_enodes(store) == ({("bank-a", "bank-a-1"): ENODE_B}, [])


def test_read_enodes_skips_and_reports_bad_records(store: LocalStore) -> None:
    assert ENODE.match(ENODE_A)
    assert ENODE.match(ENODE_B)
    publish_enode(store, "bank-a-1", "bank-a", ENODE_A)
    publish_enode(store, "bank-b-2", "bank-b", ENODE_B)
    store.write("enodes/bank-a/bank-a-2.json", b'{"node": "bank-a-2", "enode": ')
    store.write("enodes/bank-a/bank-a-3.json", json.dumps({"node": "bank-a-3"}).encode())
    bad_url = "enode://" + "zz" * 64 + "@127.0.0.1:30305"
    store.write(
        "enodes/bank-b/bank-b-1.json",
        json.dumps({"node": "bank-b-1", "member": "bank-b", "enode": bad_url}).encode(),
    )
    store.write(
        "enodes/bank-b/bank-b-3.json",
        json.dumps({"node": "bank-b-3", "enode": "enode://" + "ab" * 64 + "@host"}).encode(),
    )
    store.write(  # bank-b's folder speaking for a node of bank-a's
        "enodes/bank-b/bank-a-9.json",
        json.dumps({"node": "bank-a-9", "member": "bank-a", "enode": ENODE_A}).encode(),
    )
    store.write("enodes/bank-b-4.json", json.dumps({"node": "bank-b-4"}).encode())  # no member

    enodes, problems = read_enodes(store)

    assert enodes == {("bank-a", "bank-a-1"): ENODE_A, ("bank-b", "bank-b-2"): ENODE_B}
    assert len(problems) == 6
    by_blob = {p.split(":", 1)[0]: p for p in problems}
    assert "not its path's bank-b/bank-a-9" in by_blob.pop("enodes/bank-b/bank-a-9.json")
    assert set(by_blob) == {
        "enodes/bank-b/bank-b-1.json",
        "enodes/bank-a/bank-a-2.json",
        "enodes/bank-a/bank-a-3.json",
        "enodes/bank-b/bank-b-3.json",
        "enodes/bank-b-4.json",
    }
    assert "not an enode record (JSONDecodeError)" in by_blob["enodes/bank-a/bank-a-2.json"]
    assert "not an enode record (KeyError)" in by_blob["enodes/bank-a/bank-a-3.json"]
    assert "malformed enode URL" in by_blob["enodes/bank-b/bank-b-1.json"]
    assert "zzzz" in by_blob["enodes/bank-b/bank-b-1.json"]
    assert "not an enode record's name" in by_blob["enodes/bank-b-4.json"]


def test_read_enodes_of_an_empty_store(store: LocalStore) -> None:
    assert read_enodes(store) == ({}, [])


def test_enodes_are_keyed_by_their_path_so_two_banks_node_1_do_not_collide(
    store: LocalStore,
) -> None:
    publish_enode(store, "node-1", "bank-a", ENODE_A)
    publish_enode(store, "node-1", "bank-b", ENODE_B)
    store.write(  # a record naming another node than its path's
        "enodes/bank-b/node-2.json",
        json.dumps({"node": "node-1", "member": "bank-b", "enode": ENODE_A}).encode(),
    )
    enodes, problems = read_enodes(store)
    assert enodes == {("bank-a", "node-1"): ENODE_A, ("bank-b", "node-1"): ENODE_B}
    assert problems == [
        "enodes/bank-b/node-2.json: names 'bank-b'/'node-1', not its path's bank-b/node-2"
    ]
