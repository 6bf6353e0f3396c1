"""Shared fixtures: the pinned geth, free ports, short state dirs, consortia torn down."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.geth.command import GETH_VERSION, locate_geth
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.ports import port_is_free

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


EPHEMERAL_PORTS_START = 32768


def free_port_bases(count: int, span: int) -> list[int]:
    """`count` base ports, each followed by `span` free ports, ranges not overlapping."""
    bases: list[int] = []
    while len(bases) < count:
        # Below Linux's ephemeral range (32768+), where a client's outgoing connection
        # could take a port between our check and a node's (re)start.
        base = random.randrange(20000, EPHEMERAL_PORTS_START - span)
        taken = any(abs(base - b) < span for b in bases)
        if not taken and all(port_is_free(p) for p in range(base, base + span)):
            bases.append(base)
    return bases


def consortium_yaml(
    members: dict[str, int],
    *,
    period: int = 2,
    rpc_nodes: int = 0,
    spares: int = 0,
    extra: str = "",
) -> str:
    """A consortium file on free ports: members maps name to number of validators."""
    span = sum(members.values()) + (rpc_nodes + spares) * len(members)
    p2p, http, authrpc, health = free_port_bases(4, span + 1)
    lines = [
        f"block_period: {period}",
        f"ports: {{p2p: {p2p}, http: {http}, authrpc: {authrpc}, health: {health}}}",
        "members:",
    ]
    lines += [
        f"  {m}: {{validators: {v}, spares: {spares}, rpc_nodes: {rpc_nodes}}}"
        for m, v in members.items()
    ]
    return "\n".join(lines) + "\n" + extra


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
