"""The fault suite's fixtures: a fault lab per module, skipped (with the reason) where
network namespaces cannot be made, and the suite's size (`POACTL_FAULTS`: unset for
CI's short run, `full` for the on-demand one)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.config import default_config_text
from orchestrator.errors import ToolError
from orchestrator.lab import netns, topology
from orchestrator.lab.wan import locate_toxiproxy
from tests.faults.harness import FaultLab, keep_files

FULL = os.environ.get("POACTL_FAULTS") == "full"


def lab_unavailable() -> str | None:
    reason = netns.unavailable()
    if reason:
        return reason
    try:
        locate_toxiproxy()
    except ToolError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def lab_ready() -> None:
    """Skip (saying why) without root and the lab's tools; remove stale labs first."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(f"the network lab cannot run here: {reason}")
    topology.remove_stale()


@pytest.fixture
def lab_dir(lab_ready: None) -> Iterator[Path]:
    """A short directory for one lab (geth's IPC path must stay under 108 characters)."""
    d = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="package")
def fault_lab(lab_ready: None) -> Iterator[FaultLab]:
    """The default consortium in a lab, under load and watched, shared by the modules
    that leave it whole (each scenario waits until it is healthy again first). Torn down
    when tests/faults ends: a session-wide lab kept six nodes and its write load running
    through every later test, and CI's fencing test lost its timing to them."""
    root = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    try:
        with FaultLab.running(root / "lab", lab_config(root)) as running:
            yield running
    finally:
        if not keep_files():  # kept: its logs, to read after
            shutil.rmtree(root, ignore_errors=True)


def lab_config(root: Path) -> Path | None:
    """The CI subset's consortium: the shipped file at geth's private-network settings
    (30M gas, `tuning: {}`), the setup docs/reliability.md's table was measured with, and
    lighter on a loaded 2-core machine than the fast defaults (recommit 1 s doubles block
    building). POACTL_FAULTS_CONFIG=shipped runs the shipped file as it is."""
    if os.environ.get("POACTL_FAULTS_CONFIG") == "shipped":
        return None
    doc = yaml.safe_load(default_config_text())
    doc["gas_limit"], doc["tuning"] = 30_000_000, {}
    path = root / "consortium.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
