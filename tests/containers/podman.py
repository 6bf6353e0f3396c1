"""Fixtures for tests that run containers: a Docker API and the local geth image.

`docker_host` gives the Docker API for the session: `POACTL_TEST_DOCKER_HOST` if set (a
real Docker Engine), else Podman's API on this machine, started by
`scripts/setup_podman.sh` and stopped by the last test session using it, if a test
session started it. It sets `DOCKER_HOST` and `TESTCONTAINERS_RYUK_DISABLED=true` for
the session. `geth_image` builds the FROM-scratch geth image
(`scripts/build_geth_image.sh`); `test_labels` gives per-test `io.poactl.*` labels and
removes the containers carrying them after the test.

tests/conftest.py registers these fixtures for every test module.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from orchestrator.runtime.image import connect

REPO = Path(__file__).resolve().parents[2]
SETUP_PODMAN = REPO / "scripts" / "setup_podman.sh"
BUILD_IMAGE = REPO / "scripts" / "build_geth_image.sh"
PODMAN_DIR = REPO / ".tools" / "podman"
STARTED_BY_TESTS = PODMAN_DIR / "started-by-tests"


def _run_script(argv: list[str], what: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, env=env)
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """The Docker API address for this session, in DOCKER_HOST.

    Several pytest sessions may share the Podman service (developers and CI on one
    machine): each holds a shared lock on it while it runs; the last one out stops the
    service if a test session started it (never one an operator started by hand).
    """
    patch = pytest.MonkeyPatch()
    patch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    given = os.environ.get("POACTL_TEST_DOCKER_HOST")
    if given:
        patch.setenv("DOCKER_HOST", given)
        yield given
        patch.undo()
        return
    PODMAN_DIR.mkdir(parents=True, exist_ok=True)
    with (PODMAN_DIR / "sessions.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            out = _run_script([str(SETUP_PODMAN)], "scripts/setup_podman.sh")
            if "starting the podman API service" in out:
                STARTED_BY_TESTS.touch()
            host = out.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
            patch.setenv("DOCKER_HOST", host)
            yield host
        finally:
            patch.undo()
            fcntl.flock(lock, fcntl.LOCK_UN)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another session still uses it; the last one stops it
            else:
                if STARTED_BY_TESTS.exists():
                    subprocess.run([str(SETUP_PODMAN), "--stop"], capture_output=True, check=False)
                    STARTED_BY_TESTS.unlink()
                fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    client = connect(docker_host)
    yield client
    client.close()


@pytest.fixture(scope="session")
def geth_image(docker_host: str) -> str:
    """The local geth 1.13.15 image (FROM scratch), built once, its tag."""
    out = _run_script(
        [str(BUILD_IMAGE)],
        "scripts/build_geth_image.sh",
        env={**os.environ, "DOCKER_HOST": docker_host},
    )
    return out.strip().splitlines()[-1]


@pytest.fixture
def test_labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """io.poactl labels unique to one test; its containers are removed after it."""
    labels = {"io.poactl.consortium": f"test-{uuid.uuid4().hex[:10]}"}
    yield labels
    for c in docker_client.containers.list(
        all=True, filters={"label": [f"{k}={v}" for k, v in labels.items()]}
    ):
        c.remove(force=True)
