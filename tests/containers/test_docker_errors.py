"""`poactl up` with the Docker runtime refuses a missing image and an unreachable Docker
API before anything starts: exit 1, a message naming the problem, no state dir, no
container, no process."""

from __future__ import annotations

from pathlib import Path

import docker
from click.testing import CliRunner

from orchestrator.cli.main import main
from tests.helpers.ports import consortium_yaml
from tests.helpers.processes import processes_mentioning


def up(short_dir: Path, runtime: str) -> tuple[int, str, Path]:
    config = short_dir / "c.yaml"
    config.write_text(consortium_yaml({"bank-a": 1}, extra=f"runtime: {runtime}\n"))
    state = short_dir / "s"
    result = CliRunner().invoke(main, ["up", "--config", str(config), "--state-dir", str(state)])
    return result.exit_code, result.output, state


def test_a_missing_image_is_refused_before_anything_starts(
    docker_host: str, docker_client: docker.DockerClient, short_dir: Path
) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    code, output, state = up(
        short_dir,
        f"{{kind: docker, image: 'localhost/poactl/absent:v0', docker_host: '{docker_host}'}}",
    )
    assert code == 1
    assert "localhost/poactl/absent:v0" in output and "hint:" in output
    assert not state.exists()
    assert {c.id for c in docker_client.containers.list(all=True)} == before
    assert processes_mentioning(str(state)) == []


def test_an_unreachable_docker_api_is_refused_naming_it(short_dir: Path) -> None:
    url = f"unix://{short_dir / 'nothing.sock'}"
    code, output, state = up(short_dir, f"{{kind: docker, docker_host: '{url}'}}")
    assert code == 1
    assert url in output and "hint:" in output
    assert not state.exists()
