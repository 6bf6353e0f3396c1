"""Each bank its own store: what a bank publishes, what the others may read of it, and
what nobody can make it say. Three banks, each a `ConsortiumStore` over its own SQLite
store; their publications are directories (read by `file://` URL) or, in the Azure
case, Azurite containers read through a read-only SAS URL.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from orchestrator.boundaries import Store
from orchestrator.config import PublishSettings, StoreSettings
from orchestrator.errors import AccessDenied, ConfigError
from orchestrator.network.data import ConsortiumStore, directory_entry
from orchestrator.network.names import GENESIS, directory_blob, enode_blob, leader_lease
from orchestrator.network.peers import publish_enode, read_enodes
from orchestrator.store.azure_blob import AzureBlobStore
from orchestrator.wiring import make_store, open_consortium_data
from tests.services.azurite import ACCOUNT, Azurite, unique_container

BANKS = ("bank-a", "bank-b", "bank-c")
ENODE = "enode://" + "ab" * 64 + "@127.0.0.1:30303"

Banks = dict[str, Store]


def _directory_banks(tmp_path: Path) -> tuple[Banks, Callable[[str], Path]]:
    published = {b: tmp_path / b / "published" for b in BANKS}
    banks = {
        b: make_store(
            StoreSettings(
                kind="local",
                path=tmp_path / b / "store.sqlite",
                publish=PublishSettings(kind="local", path=published[b]),
                consortium_data={o: published[o].as_uri() for o in BANKS if o != b},
                shared_from="bank-a",  # the founder
            ),
            member=b,
        )
        for b in BANKS
    }
    return banks, published.__getitem__


def _sas_url(azurite: Azurite, container: str) -> str:
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=azurite.credential["account_key"],
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{azurite.account_url}/{container}?{sas}"


@pytest.fixture(params=["directories", "azurite-sas"])
def banks(request: pytest.FixtureRequest, tmp_path: Path) -> Banks:
    if request.param == "directories":
        return _directory_banks(tmp_path)[0]
    azurite: Azurite = request.getfixturevalue("azurite")
    key_file = tmp_path / "account.key"
    key_file.write_text(azurite.credential["account_key"])
    containers = {b: unique_container("pub") for b in BANKS}
    for c in containers.values():
        AzureBlobStore(azurite.account_url, c, credential=azurite.credential).ensure_container()
    return {
        b: make_store(
            StoreSettings(
                kind="local",
                path=tmp_path / b / "store.sqlite",
                publish=PublishSettings(
                    kind="azure",
                    account_url=azurite.account_url,
                    container=containers[b],
                    account_key_file=key_file,
                ),
                consortium_data={o: _sas_url(azurite, containers[o]) for o in BANKS if o != b},
            ),
            member=b,
        )
        for b in BANKS
    }


def test_a_banks_descriptor_reaches_the_others_through_its_publication(banks: Banks) -> None:
    a, b, c = (banks[x] for x in BANKS)
    a.write("members/bank-a.json", b'{"member": "bank-a"}', if_absent=True)
    for reader in (b, c):
        blob = reader.read("members/bank-a.json")
        assert blob is not None and blob.data == b'{"member": "bank-a"}'
    b.write("members/bank-b.json", b'{"member": "bank-b"}')
    assert c.list("members/") == ["members/bank-a.json", "members/bank-b.json"]


def test_no_bank_writes_another_banks_data(banks: Banks) -> None:
    a, b = banks["bank-a"], banks["bank-b"]
    with pytest.raises(AccessDenied, match="cannot write bank-a's consortium data"):
        b.write("members/bank-a.json", b"forged")
    with pytest.raises(AccessDenied):
        b.write(enode_blob("bank-a", "bank-a-1"), b"forged")
    assert a.read("members/bank-a.json") is None  # nothing was written anywhere
    assert b.list("members/") == []


def test_a_publication_speaks_only_for_its_own_bank(tmp_path: Path) -> None:
    """bank-b's publication holding a record about bank-a is not bank-a's word."""
    banks, published = _directory_banks(tmp_path)
    forged = published("bank-b") / "enodes" / "bank-a" / "bank-a-1.json"
    forged.parent.mkdir(parents=True)
    forged.write_text('{"node": "bank-a-1", "member": "bank-a", "enode": "' + ENODE + '"}')
    (published("bank-b") / "members").mkdir()
    (published("bank-b") / "members" / "bank-a.json").write_text("forged")
    c = banks["bank-c"]
    assert c.read("members/bank-a.json") is None
    assert c.list("enodes/") == [] and read_enodes(c) == ({}, [])
    publish_enode(banks["bank-a"], "bank-a-1", "bank-a", ENODE)
    assert read_enodes(c) == ({("bank-a", "bank-a-1"): ENODE}, [])


def test_the_networks_blobs_come_from_the_founder_only(tmp_path: Path) -> None:
    """bank-b cannot hand bank-c (or the founder) a genesis, nor make a record count by
    leaving the member out of its name, nor point a file at a local secret."""
    banks, published = _directory_banks(tmp_path)
    forged = published("bank-b") / "network"
    forged.mkdir(parents=True)
    (forged / "genesis.json").write_text('{"forged": true}')
    (published("bank-b") / "heartbeats").mkdir()
    (published("bank-b") / "heartbeats" / "bank-a-1.json").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for publication")
    (published("bank-b") / "network" / "contracts.json").symlink_to(secret)
    for reader in ("bank-a", "bank-c"):
        assert banks[reader].read(GENESIS) is None
        assert banks[reader].list("heartbeats/") == []
    assert open_consortium_data(published("bank-b").as_uri()).read("network/contracts.json") is None
    assert "network/contracts.json" not in open_consortium_data(str(published("bank-b"))).list("")
    banks["bank-a"].write(GENESIS, b'{"genesis": 1}', if_absent=True)
    blob = banks["bank-c"].read(GENESIS)
    assert blob is not None and blob.data == b'{"genesis": 1}'


def test_a_path_with_spaces_is_read_through_its_file_url(tmp_path: Path) -> None:
    root = tmp_path / "a bank" / "published"
    (root / "members").mkdir(parents=True)
    (root / "members" / "bank-a.json").write_text("{}")
    assert open_consortium_data(root.as_uri()).list("members/") == ["members/bank-a.json"]


def test_leases_stay_in_the_banks_own_store(tmp_path: Path) -> None:
    banks, published = _directory_banks(tmp_path)
    a, b = banks["bank-a"], banks["bank-b"]
    assert a.acquire_lease(leader_lease("bank-a"), 15) is not None
    assert b.read(leader_lease("bank-a")) is None  # not published, not read from others
    assert not (published("bank-a") / "leases").exists()
    assert b.acquire_lease(leader_lease("bank-a"), 15) is not None  # bank-b's own blob


def test_the_genesis_is_adopted_and_republished_by_every_member(tmp_path: Path) -> None:
    banks, published = _directory_banks(tmp_path)
    a, b = banks["bank-a"], banks["bank-b"]
    a.write(GENESIS, b'{"genesis": 1}', if_absent=True)
    path = published("bank-a") / "network" / "genesis.json"
    assert path.read_bytes() == b'{"genesis": 1}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the others read it
    assert not (published("bank-b") / "network").exists()
    blob = b.read(GENESIS)
    assert blob is not None and blob.data == b'{"genesis": 1}'
    # bank-b keeps and republishes it: a joining bank may fetch it from any member.
    assert (published("bank-b") / "network" / "genesis.json").read_bytes() == blob.data
    only_b = open_consortium_data(published("bank-b").as_uri())
    copy = only_b.read(GENESIS)
    assert copy is not None and copy.data == blob.data


def test_consortium_data_urls(tmp_path: Path) -> None:
    assert open_consortium_data(str(tmp_path)).read("members/x.json") is None
    assert open_consortium_data(tmp_path.as_uri()).list("members/") == []
    for bad in ("ftp://host/x", "relative/dir", "http://"):
        with pytest.raises(ConfigError, match="not a consortium data URL"):
            open_consortium_data(bad)
    with pytest.raises(ConfigError, match="needs to know its bank"):
        make_store(
            StoreSettings(kind="local", path=tmp_path / "s", consortium_data={"bank-b": "/x"})
        )


def test_a_read_only_sas_url_cannot_write(azurite: Azurite) -> None:
    container = unique_container("ro")
    AzureBlobStore(azurite.account_url, container, credential=azurite.credential).put(
        "members/bank-a.json", b"{}"
    )
    reader = AzureBlobStore.from_container_url(_sas_url(azurite, container))
    assert reader.list("members/") == ["members/bank-a.json"]
    assert "sig=" not in repr(reader)  # the signature never reaches a log line
    with pytest.raises((AccessDenied, HttpResponseError)):
        reader.put("members/bank-a.json", b"forged")


def test_a_bank_that_joined_later_is_found_through_a_members_directory(tmp_path: Path) -> None:
    published = {b: tmp_path / b / "published" for b in BANKS}

    def bank(name: str, reads: tuple[str, ...]) -> Store:
        return make_store(
            StoreSettings(
                kind="local", path=tmp_path / name / "store.sqlite",
                publish=PublishSettings(kind="local", path=published[name]),
                consortium_data={o: published[o].as_uri() for o in reads},
                shared_from="bank-a",
            ),
            member=name,
        )  # fmt: skip

    a = bank("bank-a", ("bank-b",))  # a founder, started before bank-c joined
    b = bank("bank-b", ("bank-a",))
    c = bank("bank-c", ("bank-b",))  # joined from bank-b
    c.write("members/bank-c.json", b'{"member": "bank-c"}')
    assert a.read("members/bank-c.json") is None
    assert isinstance(a, ConsortiumStore) and isinstance(b, ConsortiumStore)
    b.write(
        directory_blob("bank-b", "bank-c"), directory_entry("bank-c", published["bank-c"].as_uri())
    )
    founders = {"bank-a", "bank-b"}
    vouched = {"bank-a": founders, "bank-b": founders}
    assert a.discover(vouched) == []  # not a member yet: not read
    assert a.discover({**vouched, "bank-c": {"bank-a"}}) == []  # bank-b did not propose it
    assert a.discover({**vouched, "bank-c": {"bank-b"}}) == ["bank-c"]
    blob = a.read("members/bank-c.json")
    assert blob is not None and blob.data == b'{"member": "bank-c"}'
    assert a.discover({**vouched, "bank-c": {"bank-b"}}) == []  # once
    b.publish_directory()  # what bank-b reads, for bank-c: bank-a
    assert isinstance(c, ConsortiumStore)
    assert c.discover({**vouched, "bank-c": {"bank-b"}}) == ["bank-a"]
    assert a.discover(vouched) == []  # bank-c voted out: no longer read
    assert a.read("members/bank-c.json") is None


def test_a_directory_entry_that_does_not_answer_is_skipped(tmp_path: Path) -> None:
    banks, _ = _directory_banks(tmp_path)
    a, b = banks["bank-a"], banks["bank-b"]
    assert isinstance(a, ConsortiumStore)
    b.write(directory_blob("bank-b", "bank-d"), directory_entry("bank-d", "https://"))
    b.write(directory_blob("bank-b", "bank-e"), b"not json")
    vouched = {m: {"bank-b"} for m in ("bank-a", "bank-b", "bank-d", "bank-e")}
    assert a.discover(vouched) == []  # both skipped, logged once; nothing raised
    assert a.list("members/") == []
