"""The default four-signer consortium in geth containers, run by the same agents, through
Podman's Docker API: every signer seals, a stopped container is noticed by its agent and
the node comes back and catches up, and `poactl down` removes exactly the consortium's
containers (a container of someone else's, started with testcontainers, stays)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.local.consortium import LocalConsortium
from orchestrator.runtime.docker import is_gone
from tests.helpers.chain import agent, assert_no_signer_sealed_twice_at_one_height, chain_of, head
from tests.helpers.ports import consortium_yaml, free_port_bases
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

NODES = ["bank-a-1", "bank-a-2", "bank-b-1", "bank-b-2"]


@pytest.fixture(scope="module")
def in_containers(docker_host: str, geth_image: str) -> Iterator[LocalConsortium]:
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    runtime = f"{{kind: docker, image: '{geth_image}', docker_host: '{docker_host}'}}"
    config.write_text(consortium_yaml({"bank-a": 2, "bank-b": 2}, extra=f"runtime: {runtime}\n"))
    local = LocalConsortium(root / "s")
    try:
        local.up(config, timeout=120)
        yield local
    finally:
        if local.exists:
            local.down()
        shutil.rmtree(root, ignore_errors=True)


def ours(client: docker.DockerClient, local: LocalConsortium) -> list[str]:
    label = f"io.poactl.consortium={local.layout.config}"
    return sorted(c.name for c in client.containers.list(all=True, filters={"label": label}))


def test_every_signer_seals_in_its_own_container(
    in_containers: LocalConsortium, docker_client: docker.DockerClient
) -> None:
    assert ours(docker_client, in_containers) == [f"poactl-{n}" for n in NODES]
    start = head(in_containers, "bank-a-1")
    wait_for(lambda: head(in_containers, "bank-a-1") >= start + 8, 40, "8 more blocks")
    chain = chain_of(in_containers, "bank-a-1")
    assert {s for s, _ in chain.values()} >= {s.lower() for s in in_containers.signers().values()}
    assert len(in_containers.signers()) == 4
    status = CliRunner().invoke(main, ["status", "--state-dir", str(in_containers.layout.root)])
    assert status.exit_code == 0, status.output


def test_a_stopped_container_is_restarted_by_its_agent_and_catches_up(
    in_containers: LocalConsortium, docker_client: docker.DockerClient
) -> None:
    victim = "bank-b-2"
    before = agent(in_containers, victim)
    docker_client.containers.get(f"poactl-{victim}").stop(timeout=10)
    stopped_at = time.monotonic()

    def back() -> bool:
        try:
            running = docker_client.containers.get(f"poactl-{victim}").status == "running"
        except docker.errors.APIError as e:  # the agent is removing the stopped one
            if not is_gone(e):
                raise
            return False
        return running and head(in_containers, victim) >= head(in_containers, "bank-a-1") - 1

    wait_for(back, 60, "the agent to restart the container and the node to catch up")
    assert time.monotonic() - stopped_at < 60
    signer = str(before["identity"]["signer"]).lower()  # type: ignore[index]
    top = head(in_containers, "bank-a-1")
    wait_for(
        lambda: any(
            s == signer and n > top for n, (s, _) in chain_of(in_containers, "bank-a-1").items()
        ),
        40,
        "the restarted node to seal again",
    )
    assert_no_signer_sealed_twice_at_one_height(in_containers)


def test_down_removes_exactly_the_consortiums_containers(
    in_containers: LocalConsortium,
    docker_client: docker.DockerClient,
    geth_image: str,
    test_labels: dict[str, str],
    short_dir: Path,
) -> None:
    from testcontainers.core.container import DockerContainer

    datadir = short_dir / "other"
    datadir.mkdir()
    (http,) = free_port_bases(1, 2)
    other = (
        DockerContainer(geth_image)
        .with_command(
            [
                "--dev",
                "--datadir",
                str(datadir),
                "--ipcdisable",
                "--http.port",
                str(http),
                "--authrpc.port",
                str(http + 1),
            ]
        )
        .with_volume_mapping(str(datadir), str(datadir), "rw")
        .with_kwargs(network_mode="host", labels=test_labels, user=f"{os.getuid()}:{os.getgid()}")
    )
    with other:
        time.sleep(2)
        assert docker_client.containers.get(other.get_wrapped_container().id).status == "running"
        result = CliRunner().invoke(main, ["down", "--state-dir", str(in_containers.layout.root)])
        assert result.exit_code == 0, result.output
        assert ours(docker_client, in_containers) == []
        survivor = docker_client.containers.get(other.get_wrapped_container().id)
        assert survivor.status == "running"
