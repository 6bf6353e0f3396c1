"""boot.py, a VM's first boot, against a stand-in for the instance metadata service and the
bank's artifacts container (HTTP on loopback): with public peering it advertises the
load balancer's NAT port for its node, waits for artifacts the operator has not uploaded
yet, downloads them with the identity's token, and runs install_agent.sh with it all."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.azure import boot
from orchestrator.network.served import DataServer
from orchestrator.store.published import DirectoryData

TOKEN = "token-for-storage"  # a stand-in


@dataclass
class Cloud:
    """IMDS and a blob endpoint in one loopback server."""

    private_ip: str = "10.1.0.5"
    computer: str = "poa00000B"
    lb_rules: list[dict[str, Any]] = field(default_factory=list)
    lb_asks_before_rules: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)
    missing_asks: dict[str, int] = field(default_factory=dict)  # 404 this many times first
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append((path, headers))
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/metadata/"):
            if headers.get("Metadata") != "true":
                return 400, b"{}"
            what = url.path.removeprefix("/metadata/")
            if what.endswith("privateIpAddress"):
                return 200, self.private_ip.encode()
            if what.endswith("computerName"):
                return 200, self.computer.encode()
            if what == "identity/oauth2/token":
                assert query["client_id"] == "c1" and query["resource"] == boot.STORAGE_RESOURCE
                return 200, json.dumps({"access_token": TOKEN}).encode()
            if what == "loadbalancer":
                self.lb_asks_before_rules -= 1
                rules = self.lb_rules if self.lb_asks_before_rules < 0 else []
                return 200, json.dumps({"loadbalancer": {"inboundRules": rules}}).encode()
            return 404, b""
        name = url.path.split("/")[-1]
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, b""
        if self.missing_asks.get(name, 0) > 0:
            self.missing_asks[name] -= 1
            return 404, b""
        return (200, self.blobs[name]) if name in self.blobs else (404, b"")


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    state = Cloud()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            status, body = state.answer(self.path, dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def settings(cloud: Cloud, **changes: Any) -> dict[str, Any]:
    base = {
        "member": "bank-a", "joinFrom": "", "peering": "private", "peerNetwork": "10.0.0.0/14",
        "clientId": "c1", "vaultUrl": "https://kv.vault.azure.net/",
        "blobEndpoint": f"{cloud.url}/bankadata/",
        "containers": {"store": "poactl", "publish": "consortium", "artifacts": "artifacts"},
        "artifacts": {"wheel": "poactl-0.1.0-py3-none-any.whl", "wheelhouse": ""},
        "runtime": "process", "image": "ethereum/client-go:v1.13.15",
        "ports": {"p2p": 30303, "http": 8545, "health": 8745, "data": 8780, "monitor": 8845},
    }  # fmt: skip
    return {**base, **changes}


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(boot, "DIST_DIR", tmp_path / "dist")
    monkeypatch.setattr(boot, "CONSORTIUM_FILE", tmp_path / "consortium.yaml")
    monkeypatch.setattr(boot.time, "sleep", lambda _s: None)  # the waits are for Azure
    return tmp_path / "dist"


def recording_installer(record: Path) -> bytes:
    return f'#!/bin/bash\nprintf "%s\\n" "$@" > {record}\n'.encode()


def test_a_public_peering_boot_advertises_its_nat_port_and_installs(
    cloud: Cloud, dist: Path, tmp_path: Path
) -> None:
    record = tmp_path / "args"
    cloud.blobs = {
        "install_agent.sh": recording_installer(record),
        "poactl-0.1.0-py3-none-any.whl": b"w",
    }
    cloud.missing_asks = {"install_agent.sh": 2}  # not uploaded yet, twice
    cloud.lb_asks_before_rules = 1  # IMDS shows the NAT rule a little late
    cloud.lb_rules = [
        {"frontendIpAddress": "203.0.113.20", "protocol": "tcp", "frontendPort": 30404,
         "backendPort": 30303, "privateIpAddress": "10.1.0.4"},  # another VM
        {"frontendIpAddress": "203.0.113.20", "protocol": "tcp", "frontendPort": 30405,
         "backendPort": 30303, "privateIpAddress": "10.1.0.5"},
        {"frontendIpAddress": "203.0.113.20", "protocol": "tcp", "frontendPort": 8780,
         "backendPort": 8780, "privateIpAddress": "10.1.0.5"},
    ]  # fmt: skip
    code = boot.boot(settings(cloud, peering="public", peerNetwork="0.0.0.0/0"),
                     imds=boot.Imds(cloud.url))  # fmt: skip
    assert code == 0
    args = record.read_text().splitlines()
    given = dict(zip(args[::2], args[1::2], strict=True))
    assert given["--node"] == "bank-a-poa00000b"
    assert given["--host"] == given["--rpc-host"] == "10.1.0.5"
    assert given["--advertise"] == "203.0.113.20:30405"
    assert given["--client-id"] == "c1"
    assert given["--source"] == str(dist / "poactl-0.1.0-py3-none-any.whl")
    assert given["--storage-account-url"] == f"{cloud.url}/bankadata"
    assert "--consortium-data" not in given  # a founder reads no one
    assert (dist / "poactl-0.1.0-py3-none-any.whl").read_bytes() == b"w"
    blob_asks = [h for p, h in cloud.requests if "/bankadata/artifacts/" in p]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in blob_asks)
    assert len(blob_asks) == 4  # two 404s, then the script and the wheel


def test_a_joining_boot_reads_which_member_publishes_at_the_url(
    cloud: Cloud, dist: Path, tmp_path: Path
) -> None:
    published = DirectoryData(tmp_path / "a-published")
    published.put("members/bank-a.json", b"{}")
    record = tmp_path / "args"
    cloud.blobs = {
        "install_agent.sh": recording_installer(record),
        "poactl-0.1.0-py3-none-any.whl": b"w",
    }
    with DataServer(published, "127.0.0.1", 0).running() as server:
        code = boot.boot(settings(cloud, member="bank-b", joinFrom=server.url),
                         imds=boot.Imds(cloud.url))  # fmt: skip
    assert code == 0
    args = record.read_text().splitlines()
    given = dict(zip(args[::2], args[1::2], strict=True))
    assert given["--consortium-data"] == f"bank-a={server.url}"
    assert given["--shared-from"] == "bank-a"
    assert "--advertise" not in given  # private peering: the node's own address


def test_a_join_url_that_is_not_one_members_data_is_refused(tmp_path: Path) -> None:
    published = DirectoryData(tmp_path / "p")
    published.put("members/bank-a.json", b"{}")
    published.put("members/bank-c.json", b"{}")
    with (
        DataServer(published, "127.0.0.1", 0).running() as server,
        pytest.raises(boot.BootError, match="publishes 2 member descriptors"),
    ):
        boot.publisher_at(server.url, deadline=0)


def test_artifacts_that_never_come_are_reported_with_what_to_upload(
    cloud: Cloud, dist: Path
) -> None:
    with pytest.raises(boot.BootError, match="upload it to the bank's artifacts container"):
        boot.download(f"{cloud.url}/bankadata/artifacts/install_agent.sh", dist / "x",
                      token=lambda: TOKEN, deadline=0)  # fmt: skip


@pytest.mark.parametrize(
    ("member", "computer", "node"),
    [("bank-a", "poa00000B", "bank-a-poa00000b"), ("bank-a", "Poa_0001", "bank-a-poa-0001"),
     ("b" * 32, "poa" + "x" * 20, "b" * 32 + "-poaxxxxxx")],
)  # fmt: skip
def test_node_names_are_valid_and_unique_per_vm(member: str, computer: str, node: str) -> None:
    assert boot.node_name(member, computer) == node


def test_a_wheelhouse_with_a_path_outside_is_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("../evil.whl")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(boot.BootError, match="not a plain file name"):
        boot.unpack(bad, tmp_path / "wheels")
    assert not (tmp_path / "evil.whl").exists()
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        info = tarfile.TarInfo("a-1.0-py3-none-any.whl")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    boot.unpack(good, tmp_path / "wheels")
    assert (tmp_path / "wheels" / "a-1.0-py3-none-any.whl").read_bytes() == b"ok"


def test_a_joiner_waits_for_the_founder_to_publish_its_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = DirectoryData(tmp_path / "a")
    published.put("network/networkinfo.json", b"{}")  # the endpoint answers, no descriptor
    calls = []

    def later(_seconds: float) -> None:
        calls.append(1)
        published.put("members/bank-a.json", b"{}")  # the founder's leader publishes it

    monkeypatch.setattr(boot.time, "sleep", later)
    with DataServer(published, "127.0.0.1", 0).running() as server:
        assert boot.publisher_at(server.url, deadline=boot.time.monotonic() + 60) == "bank-a"
    assert calls
    empty = DirectoryData(tmp_path / "empty")
    empty.put("network/networkinfo.json", b"{}")
    with (
        DataServer(empty, "127.0.0.1", 0).running() as server,
        pytest.raises(boot.BootError, match="publishes 0 member descriptors"),
    ):
        boot.publisher_at(server.url, deadline=0)


def test_boot_uses_the_standard_library_only() -> None:
    import ast
    import sys

    tree = ast.parse(Path(boot.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
