"""One geth for a test, outside any consortium: a datadir initialised from a Clique
genesis, on free loopback ports, with the argv `orchestrator.geth.command` builds for
every node (the same flags the agents run). The credit tests' sealing chain and the
runtime contract tests both start theirs from here."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from genesis import CliqueSpec, build_genesis, canonical_json
from orchestrator.geth.command import GethNode, geth_argv, geth_config_toml
from tests.helpers.ports import free_port_bases


@dataclass(frozen=True)
class DevNode:
    """An initialised datadir and everything needed to start its geth."""

    name: str
    home: Path
    datadir: Path
    argv: list[str]
    ipc: Path
    log_file: Path
    http_port: int

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def dev_node(
    geth: str,
    home: Path,
    spec: CliqueSpec,
    *,
    init: bool = True,
    signer: str | None = None,
    max_peers: int = 1,
) -> DevNode:
    """`home/data` initialised from `spec` (unless `init` is False); `signer` makes it
    mine as that address (the caller unlocks its key from `home/data/keystore`)."""
    home.mkdir(parents=True, exist_ok=True)
    datadir, genesis = home / "data", home / "genesis.json"
    genesis.write_bytes(canonical_json(build_genesis(spec)))
    if init:
        subprocess.run(
            [geth, "--datadir", str(datadir), "init", str(genesis)],
            capture_output=True,
            check=True,
            timeout=60,
        )
    p2p, http, authrpc = free_port_bases(3, 1)
    config = home / "config.toml"
    config.write_text(geth_config_toml(p2p, []))
    node = GethNode(
        datadir=datadir,
        config_file=config,
        ipc_path=home / "geth.ipc",
        network_id=spec.chain_id,
        http_port=http,
        authrpc_port=authrpc,
        max_peers=max_peers,
        etherbase=signer,
    )
    return DevNode(
        home.name, home, datadir, geth_argv(geth, node), node.ipc_path, home / "geth.log", http
    )
