"""The local geth image under testcontainers, through Podman's Docker API: a dev-mode geth
in a container on the host network answers JSON-RPC on a host port and seals blocks, and
the binary inside is the pinned 1.13.15 at the official image's path."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import free_port_bases

pytestmark = pytest.mark.geth


def rpc(port: int, method: str) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


def test_the_image_entrypoint_is_the_pinned_geth(
    docker_host: str, geth_image: str, test_labels: dict[str, str]
) -> None:
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    testcontainers_config.ryuk_disabled = True
    container = (
        DockerContainer(geth_image)
        .with_command(["version"])  # the image's entrypoint is geth, as in ethereum/client-go
        .with_kwargs(network_mode="host", labels=test_labels)
    )
    with container:
        result = container.get_wrapped_container().wait(timeout=30)
        out = container.get_wrapped_container().logs().decode()
    assert result["StatusCode"] == 0, out
    assert "Version: 1.13.15-stable" in out


def test_dev_node_in_a_testcontainer_answers_and_seals(
    docker_host: str, geth_image: str, test_labels: dict[str, str], short_dir: Path
) -> None:
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    testcontainers_config.ryuk_disabled = True  # no Ryuk image here; we remove our own
    http, authrpc = free_port_bases(2, 1)
    datadir = short_dir / "dev"
    datadir.mkdir()
    command = [
        "--dev", "--dev.period", "1", "--datadir", str(datadir), "--ipcdisable",
        "--http", "--http.addr", "127.0.0.1", "--http.port", str(http),
        "--authrpc.addr", "127.0.0.1", "--authrpc.port", str(authrpc),
    ]  # fmt: skip
    user = f"{os.getuid()}:{os.getgid()}"
    container = (
        DockerContainer(geth_image)
        .with_command(command)
        .with_volume_mapping(str(datadir), str(datadir), "rw")
        .with_kwargs(network_mode="host", labels=test_labels, user=user)
        .waiting_for(LogMessageWaitStrategy("HTTP server started").with_startup_timeout(60))
    )
    with container:
        assert rpc(http, "eth_chainId") == hex(1337)  # geth's dev chain
        deadline = time.monotonic() + 20
        while int(rpc(http, "eth_blockNumber"), 16) < 2:
            assert time.monotonic() < deadline, "the dev node sealed no blocks in 20 s"
            time.sleep(0.5)
        info = container.get_wrapped_container()
        info.reload()
        assert info.attrs["HostConfig"]["NetworkMode"] == "host"
        assert (
            info.attrs["Config"]["Labels"]["io.poactl.consortium"]
            == (test_labels["io.poactl.consortium"])
        )
