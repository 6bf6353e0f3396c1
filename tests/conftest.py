"""Shared fixtures: the pinned geth, free ports, short state dirs, consortia torn down."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from orchestrator.geth.command import GETH_VERSION, locate_geth
from orchestrator.local.consortium import LocalConsortium

pytest_plugins = [
    "tests.services.azurite",
    "tests.services.keyvault_emulator",
    "tests.services.netcut",
    "tests.containers.podman",
]


@pytest.fixture(scope="session")
def geth() -> str:
    """The pinned geth, its version asserted from the binary itself."""
    path = locate_geth(None)
    out = subprocess.run([path, "version"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {GETH_VERSION}-stable" in out, out
    return path


AGENT_TAIL = 40  # lines of each node's agent log attached to a failing test's report
GETH_TAIL = 15


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator:
    """A test that fails with a consortium under `short_dir`, or in the fault suite's lab,
    reports the tail of every node's agent and geth log: a race seen once in CI can be
    read from CI's output."""
    outcome = yield
    report = outcome.get_result()
    root = _logs_root(getattr(item, "funcargs", {}))
    if report.when != "call" or not report.failed or root is None:
        return
    for log in sorted(root.glob("**/agent.log")) + sorted(root.glob("**/geth.log")):
        tail = AGENT_TAIL if log.name == "agent.log" else GETH_TAIL
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        report.sections.append((f"{log.relative_to(root)} (last {tail} lines)", "\n".join(lines)))


def _logs_root(funcargs: dict[str, object]) -> Path | None:
    """Where a test's nodes keep their logs: its `short_dir`, or its fault lab's directory."""
    root = funcargs.get("short_dir")
    if isinstance(root, Path):
        return root
    lab = getattr(funcargs.get("fl"), "lab", None)
    return getattr(getattr(lab, "dir", None), "root", None)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory (geth's IPC socket path must stay under 108 characters)."""
    d = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_consortium(short_dir: Path, geth: str) -> Iterator[object]:
    """Factory: (yaml text) -> (LocalConsortium, config path); every one is downed after."""
    made: list[LocalConsortium] = []

    def make(text: str, name: str = "c") -> tuple[LocalConsortium, Path]:
        config = short_dir / f"{name}.yaml"
        config.write_text(text)
        local = LocalConsortium(short_dir / name, geth=geth)
        made.append(local)
        return local, config

    yield make
    for local in made:
        if local.exists:
            local.down()
