"""The `Runtime` contract, run against every backend: `ProcessRuntime` (geth as a child
process) and `DockerRuntime` (geth in a container, through Podman's Docker API here).

Each test starts a real geth 1.13.15 on a datadir `geth init`-ed from a tiny Clique
genesis, with the argv `orchestrator.geth.command.geth_argv` builds and a real config.toml, on
free ports. Then the Docker backend's own promises: labels and mounts, stale containers,
`remove_labelled`, and its ways of failing (missing image, wrong geth, no Docker API).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import psutil
import pytest
from docker.errors import NotFound

from genesis import CliqueSpec
from orchestrator.boundaries import NodeProcess, Runtime
from orchestrator.errors import NodeError, ServiceUnavailable, ToolError
from orchestrator.geth.ipc import ipc_probe
from orchestrator.runtime.docker import DockerRuntime, remove_labelled
from orchestrator.runtime.image import GETH_IN_IMAGE, check_image, connect
from orchestrator.runtime.process import ProcessRuntime
from tests.helpers.geth import DevNode, dev_node
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.geth
CHAIN_ID = 4242


MakeNode = Callable[..., DevNode]  # (name, *, init=True) -> DevNode


@pytest.fixture
def make_node(short_dir: Path, geth: str) -> MakeNode:
    spec = CliqueSpec(CHAIN_ID, ["0x" + "11" * 20])

    def make(name: str, *, init: bool = True) -> DevNode:
        node = dev_node(geth, short_dir / name, spec, init=init)
        return dataclasses.replace(node, log_file=node.home / "logs" / "geth.log")

    return make


@pytest.fixture(params=["process", "docker"])
def runtime(request: pytest.FixtureRequest) -> Runtime:
    if request.param == "process":
        return ProcessRuntime()
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    labels: dict[str, str] = request.getfixturevalue("test_labels")
    return DockerRuntime(client, image=request.getfixturevalue("geth_image"), labels=labels)


@pytest.fixture
def started(runtime: Runtime, make_node: MakeNode) -> Iterator[tuple[DevNode, NodeProcess]]:
    node = make_node(f"n-{uuid.uuid4().hex[:6]}")
    proc = runtime.start(node.argv, name=node.name, log_file=node.log_file)
    try:
        wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC answer")
        yield node, proc
    finally:
        proc.stop()


def log_text(node: DevNode) -> str:
    return node.log_file.read_text(errors="replace") if node.log_file.exists() else ""


# -- the contract, for every runtime --------------------------------------------------


def test_started_node_answers_over_ipc_and_logs_to_its_file(
    started: tuple[DevNode, NodeProcess],
) -> None:
    node, proc = started
    assert proc.poll() is None
    assert ipc_probe(node.ipc, "eth_chainId", []) == hex(CHAIN_ID)
    wait_for(lambda: "IPC endpoint opened" in log_text(node), what="geth's log lines")
    assert f"url={node.ipc}" in log_text(node)  # the host path, valid in both runtimes


def test_pid_is_the_running_geth(started: tuple[DevNode, NodeProcess]) -> None:
    _, proc = started
    assert psutil.Process(proc.pid).name() == "geth"


def test_env_reaches_geths_environment(runtime: Runtime, make_node: MakeNode) -> None:
    """How a consortium file's tuning.memory_limit_mb reaches geth (as GOMEMLIMIT)."""
    node = make_node(f"n-{uuid.uuid4().hex[:6]}")
    proc = runtime.start(
        node.argv, name=node.name, log_file=node.log_file, env={"GOMEMLIMIT": "123MiB"}
    )
    try:
        wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC answer")
        assert psutil.Process(proc.pid).environ().get("GOMEMLIMIT") == "123MiB"
    finally:
        proc.stop()


def test_stop_ends_it_and_poll_returns_the_exit_code(started: tuple[DevNode, NodeProcess]) -> None:
    node, proc = started
    code = proc.stop()
    assert code == 0  # geth stops cleanly on SIGINT
    assert proc.poll() == code
    assert not node.ipc.exists()  # geth removed its socket on the way out
    wait_for(lambda: "Ethereum protocol stopped" in log_text(node), what="geth's last lines")
    assert proc.stop() == code  # stopping again is harmless


def test_a_node_killed_from_outside_is_seen_by_poll(started: tuple[DevNode, NodeProcess]) -> None:
    _, proc = started
    os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: proc.poll() is not None, what="poll() to see the kill", timeout=10)
    code = proc.poll()
    assert code in (-signal.SIGKILL, 128 + signal.SIGKILL)  # Popen's and Docker's ways
    assert proc.stop() == code


def test_kill_ends_it_without_waiting(started: tuple[DevNode, NodeProcess]) -> None:
    _, proc = started
    proc.kill()
    wait_for(lambda: proc.poll() is not None, what="poll() to see the kill", timeout=10)
    assert proc.stop() == proc.poll()


def test_restart_on_the_same_datadir_appends_to_the_log(
    runtime: Runtime, make_node: MakeNode
) -> None:
    node = make_node("again")
    for _ in range(2):
        proc = runtime.start(node.argv, name=node.name, log_file=node.log_file)
        try:
            wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC")
        finally:
            proc.stop()
    assert log_text(node).count("Maximum peer count") == 2


# -- the Docker runtime's own promises -------------------------------------------------


@pytest.fixture
def docker_runtime(
    docker_client: docker.DockerClient, geth_image: str, test_labels: dict[str, str]
) -> DockerRuntime:
    return DockerRuntime(docker_client, image=geth_image, labels=test_labels)


def test_container_is_labelled_named_on_the_host_network_without_restart_policy(
    docker_runtime: DockerRuntime,
    docker_client: docker.DockerClient,
    make_node: MakeNode,
    test_labels: dict[str, str],
) -> None:
    node = make_node("labels")
    proc = docker_runtime.start(node.argv, name=node.name, log_file=node.log_file)
    try:
        attrs = docker_client.containers.get("poactl-labels").attrs
        labels = attrs["Config"]["Labels"]
        assert labels["io.poactl.node"] == "labels"
        assert labels["io.poactl.consortium"] == test_labels["io.poactl.consortium"]
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "host"
        assert host["RestartPolicy"]["Name"] in ("", "no")
        assert attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        assert attrs["Path"] == GETH_IN_IMAGE and attrs["Args"] == node.argv[1:]
        home = node.ipc.parent
        mounts = {(m["Source"], m["Destination"]) for m in attrs["Mounts"]}
        assert mounts == {(str(home), str(home))}  # datadir, config and IPC all live there
    finally:
        proc.stop()
    assert not docker_client.containers.list(all=True, filters={"name": "poactl-labels"})


def test_a_stale_container_of_ours_is_replaced(
    docker_runtime: DockerRuntime,
    docker_client: docker.DockerClient,
    make_node: MakeNode,
) -> None:
    node = make_node("stale")
    first = docker_runtime.start(node.argv, name=node.name, log_file=node.log_file)
    wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC")
    old_id = docker_client.containers.get("poactl-stale").id
    # The agent that started `first` is killed: the container goes on running. A new
    # agent starts the same node.
    second = docker_runtime.start(node.argv, name=node.name, log_file=node.log_file)
    try:
        assert docker_client.containers.get("poactl-stale").id != old_id
        wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC")
        assert first.poll() == -1  # its container is gone
    finally:
        second.stop()


def test_a_container_of_that_name_that_is_not_ours_is_left_alone(
    docker_runtime: DockerRuntime,
    docker_client: docker.DockerClient,
    geth_image: str,
    make_node: MakeNode,
) -> None:
    node = make_node("taken")
    other = docker_client.containers.create(geth_image, ["version"], name="poactl-taken")
    try:
        with pytest.raises(NodeError, match="not this node's") as e:
            docker_runtime.start(node.argv, name=node.name, log_file=node.log_file)
        assert "docker rm -f poactl-taken" in str(e.value)
        assert docker_client.containers.get("poactl-taken").id == other.id
    finally:
        other.remove(force=True)


def test_remove_labelled_removes_exactly_the_labelled_containers(
    docker_runtime: DockerRuntime,
    docker_client: docker.DockerClient,
    geth_image: str,
    make_node: MakeNode,
    test_labels: dict[str, str],
) -> None:
    node = make_node("ours")
    running = docker_runtime.start(node.argv, name=node.name, log_file=node.log_file)
    wait_for(lambda: ipc_probe(node.ipc, "eth_blockNumber", []) == "0x0", what="IPC")
    suffix = uuid.uuid4().hex[:6]
    created = docker_client.containers.create(
        geth_image, ["version"], name=f"ours-created-{suffix}", labels=test_labels
    )
    other_consortium = docker_client.containers.create(
        geth_image,
        ["version"],
        name=f"other-consortium-{suffix}",
        labels={"io.poactl.consortium": "someone-else", "io.poactl.node": "ours"},
    )
    unlabelled = docker_client.containers.create(
        geth_image, ["version"], name=f"unlabelled-{suffix}"
    )
    try:
        removed = remove_labelled(
            docker_client, {"consortium": test_labels["io.poactl.consortium"]}
        )
        assert removed == sorted(["poactl-ours", f"ours-created-{suffix}"])
        left = {c.name for c in docker_client.containers.list(all=True)}
        assert {f"other-consortium-{suffix}", f"unlabelled-{suffix}"} <= left
        assert not {"poactl-ours", f"ours-created-{suffix}"} & left
        assert running.poll() == -1
        # SIGINT first, not a kill: geth logged its clean shutdown (the follower thread of
        # `running` may still be writing it).
        wait_for(lambda: "Ethereum protocol stopped" in log_text(node), what="log", timeout=5)
    finally:
        for c in (created, other_consortium, unlabelled):
            with contextlib.suppress(NotFound):
                c.remove(force=True)


def test_run_once_inits_a_datadir_with_the_geth_in_the_image(
    docker_runtime: DockerRuntime,
    docker_client: docker.DockerClient,
    make_node: MakeNode,
    short_dir: Path,
) -> None:
    node = make_node("fresh", init=False)
    datadir = node.argv[node.argv.index("--datadir") + 1]
    before = {c.id for c in docker_client.containers.list(all=True)}
    # argv[0] need not exist on the host: the geth in the image runs.
    init = ["geth", "--datadir", datadir, "init", str(node.home / "genesis.json")]
    code, out = docker_runtime.run_once(init, name=node.name)
    assert code == 0, out
    assert "Successfully wrote genesis state" in out
    assert {c.id for c in docker_client.containers.list(all=True)} == before
    proc = docker_runtime.start(["geth", *node.argv[1:]], name=node.name, log_file=node.log_file)
    try:
        wait_for(lambda: ipc_probe(node.ipc, "eth_chainId", []) == hex(CHAIN_ID), what="IPC")
    finally:
        proc.stop()
    code, out = docker_runtime.run_once(["geth", "--datadir", datadir, "bogus"], name=node.name)
    assert code != 0 and "bogus" in out


def test_check_image_accepts_the_pinned_geth(
    docker_client: docker.DockerClient, geth_image: str
) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    assert check_image(docker_client, geth_image) == "1.13.15-stable"
    assert {c.id for c in docker_client.containers.list(all=True)} == before


@pytest.fixture(scope="module")
def other_geth_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """An image whose /usr/local/bin/geth prints another version: a static Go program
    built here (geth 1.14 does not seal Clique, and building it takes minutes)."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    tag = f"localhost/poactl-test/geth:other-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "main.go"
        src.write_text(
            'package main\n\nimport "fmt"\n\nfunc main() {\n'
            '\tfmt.Println("Geth\\nVersion: 1.14.13-stable\\nArchitecture: amd64")\n}\n'
        )
        subprocess.run(
            [go, "build", "-o", str(Path(tmp) / "geth"), str(src)],
            check=True,
            capture_output=True,
            env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
            timeout=300,
        )
        (Path(tmp) / "Dockerfile").write_text(
            f'FROM scratch\nCOPY geth {GETH_IN_IMAGE}\nENTRYPOINT ["geth"]\n'
        )
        docker_client.images.build(path=tmp, tag=tag, rm=True, pull=False)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_check_image_refuses_another_geth_version(
    docker_client: docker.DockerClient, other_geth_image: str
) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(ToolError, match=r"runs geth 1\.14\.13-stable; poactl needs 1\.13\.15") as e:
        check_image(docker_client, other_geth_image)
    assert e.value.obj == other_geth_image
    assert "build_geth_image.sh" in str(e.value.hint)
    assert e.value.exit_code != 0
    assert {c.id for c in docker_client.containers.list(all=True)} == before


def test_missing_image_is_a_tool_error_and_starts_nothing(
    docker_client: docker.DockerClient,
    make_node: MakeNode,
    test_labels: dict[str, str],
) -> None:
    missing = "localhost/poactl/geth:no-such-tag"
    with pytest.raises(ToolError, match="geth image not found") as e:
        check_image(docker_client, missing)
    assert "scripts/build_geth_image.sh" in str(e.value)
    node = make_node("missing")
    runtime = DockerRuntime(docker_client, image=missing, labels=test_labels)
    with pytest.raises(ToolError, match="geth image not found"):
        runtime.start(node.argv, name=node.name, log_file=node.log_file)
    assert not docker_client.containers.list(all=True, filters={"name": "poactl-missing"})


@pytest.mark.parametrize("kind", ["no file", "nobody listening"])
def test_unreachable_api_is_a_clear_error_within_seconds(short_dir: Path, kind: str) -> None:
    path = short_dir / "docker.sock"
    if kind == "nobody listening":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))  # bound, never listening: connections are refused
    url = f"unix://{path}"
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="the Docker API does not answer") as e:
        connect(url)
    assert time.monotonic() - started < 5
    assert e.value.obj == f"DOCKER_HOST={url}"
    assert "scripts/setup_podman.sh" in str(e.value.hint)
    assert e.value.exit_code != 0
    with pytest.raises(ServiceUnavailable):
        DockerRuntime(url)
