"""The consortium data that never silently expires: a bank's publication served read-only
from its own nodes (`poactl serve-data`), backed by a real Blob container (Azurite).

The URL the other banks hold carries no credential and no expiry: the serving VM reads
the container with its own identity (here the account key, as on Azurite), and the
container itself admits no anonymous reader. A user-delegation SAS, the only URL a
storage account without shared keys could hand out, would die within seven days.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from orchestrator.config import PublishSettings, StoreSettings
from orchestrator.network.data import ConsortiumStore
from orchestrator.network.names import GENESIS, NETWORK_INFO, leader_lease, member_blob
from orchestrator.network.served import DataServer
from orchestrator.store.azure_blob import AzureBlobStore
from orchestrator.wiring import make_store
from tests.helpers.waiting import wait_for
from tests.services.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, free_port, unique_container

REPO = Path(__file__).resolve().parents[2]


def _bank_a(azurite: Azurite, tmp_path: Path) -> tuple[ConsortiumStore, str, Path]:
    """Bank A: its store and publication in Azurite, a descriptor and the genesis written."""
    key_file = tmp_path / "a.key"
    key_file.write_text(ACCOUNT_KEY)
    publication = unique_container("pub")
    store = make_store(
        StoreSettings(
            kind="azure", account_url=azurite.account_url, container=unique_container("a"),
            account_key_file=key_file,
            publish=PublishSettings(kind="azure", account_url=azurite.account_url,
                                    container=publication, account_key_file=key_file),
        ),
        member="bank-a",
    )  # fmt: skip
    assert isinstance(store, ConsortiumStore)
    store.write(member_blob("bank-a"), b'{"member": "bank-a"}')
    store.write(GENESIS, b'{"config": {}}')
    store.write(NETWORK_INFO, b'{"version": 2}')
    assert store.acquire_lease(leader_lease("bank-a"), 15) is not None
    return store, publication, key_file


def _publication(azurite: Azurite, container: str) -> AzureBlobStore:
    credential = AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY)
    return AzureBlobStore(azurite.account_url, container, credential=credential)


def _status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except urllib.error.URLError:
        return 0  # nothing listens (yet)


def test_another_bank_reads_the_publication_through_the_endpoint(
    azurite: Azurite, tmp_path: Path
) -> None:
    _, container, _ = _bank_a(azurite, tmp_path)
    with DataServer(_publication(azurite, container), "127.0.0.1", 0,
                    container=container).running() as server:  # fmt: skip
        assert "?" not in server.url  # nothing to expire, nothing secret
        bank_b = make_store(
            StoreSettings(
                kind="local", path=tmp_path / "b.sqlite",
                publish=PublishSettings(kind="local", path=tmp_path / "b-published"),
                consortium_data={"bank-a": server.url}, shared_from="bank-a",
            ),
            member="bank-b",
        )  # fmt: skip
        blob = bank_b.read(member_blob("bank-a"))
        assert blob is not None and blob.data == b'{"member": "bank-a"}'
        assert bank_b.list("members/") == ["members/bank-a.json"]
        genesis = bank_b.read(GENESIS)  # adopted, and republished by bank B
        assert genesis is not None and (tmp_path / "b-published" / GENESIS).exists()


def test_the_endpoint_is_read_only_and_serves_no_lease(azurite: Azurite, tmp_path: Path) -> None:
    _, container, _ = _bank_a(azurite, tmp_path)
    publication = _publication(azurite, container)
    with DataServer(publication, "127.0.0.1", 0, container=container).running() as server:
        base = server.url
        assert _status(f"{base}/{member_blob('bank-a')}") == 200
        assert _status(f"{base}/{member_blob('bank-a')}", "PUT") == 405
        assert _status(f"{base}/{member_blob('bank-a')}", "DELETE") == 405
        assert _status(f"{base}/{leader_lease('bank-a')}") == 403
        assert _status(f"{base}?restype=container&comp=acl") == 403
        assert _status(f"{base}/{member_blob('bank-a')}?comp=tags") == 403
        assert _status(base.rsplit("/", 1)[0] + "/other?restype=container&comp=list") == 404
        assert _status(f"{base}/{member_blob('nobody')}") == 404
    assert publication.read(member_blob("bank-a")) is not None  # nothing was changed
    assert publication.read(leader_lease("bank-a")) is None  # leases never published
    # Without the endpoint, the container admits no anonymous reader.
    anonymous = f"{azurite.account_url}/{container}/{member_blob('bank-a')}"
    assert _status(anonymous) in (401, 403, 404)


def test_poactl_serve_data_serves_an_agents_publication_until_sigterm(
    azurite: Azurite, tmp_path: Path
) -> None:
    _, container, key_file = _bank_a(azurite, tmp_path)
    port = free_port()
    agent = tmp_path / "agent.yaml"
    agent.write_text(
        f"member: bank-a\nnode: bank-a-1\nstate_dir: {tmp_path / 'state'}\n"
        f"consortium_file: {REPO / 'orchestrator/consortium.yaml'}\n"
        "ports: {p2p: 30303, http: 8545, authrpc: 8651, health: 8745}\n"
        "vault: {kind: local, path: " + str(tmp_path / "vault") + "}\n"
        f"store:\n  kind: azure\n  account_url: {azurite.account_url}\n  container: x-store\n"
        f"  account_key_file: {key_file}\n  publish:\n    kind: azure\n"
        f"    account_url: {azurite.account_url}\n    container: {container}\n"
        f"    account_key_file: {key_file}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "serve-data", "--config", str(agent),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/{container}/{member_blob('bank-a')}"
        wait_for(lambda: _status(url) == 200, timeout=30, what="poactl serve-data answers")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
    assert b"serving bank-a's consortium data" in out


def test_an_agent_without_a_publication_is_told_what_to_give(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(
        f"member: bank-a\nnode: bank-a-1\nstate_dir: {tmp_path}\nconsortium_file: /x.yaml\n"
        "ports: {p2p: 30303, http: 8545, authrpc: 8651, health: 8745}\n"
        f"vault: {{kind: local, path: {tmp_path}}}\nstore: {{kind: local, path: {tmp_path}/s}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "serve-data", "--config", str(agent)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "publishes no consortium data" in result.stderr
    assert "--publish-container" in result.stderr


def test_a_taken_port_is_reported(tmp_path: Path) -> None:
    from orchestrator.errors import NodeError
    from orchestrator.store.published import DirectoryData

    with DataServer(DirectoryData(tmp_path), "127.0.0.1", 0).running() as first:
        port = int(first.url.split(":")[2].split("/")[0])
        with pytest.raises(NodeError) as caught:
            DataServer(DirectoryData(tmp_path), "127.0.0.1", port)
    assert "cannot serve the consortium data" in str(caught.value)
    assert caught.value.hint
