"""One geth for a test, outside any consortium: a datadir initialised from a Clique
genesis, on free loopback ports, with the argv `orchestrator.geth.command` builds for
every node (the same flags the agents run). The runtime contract tests start theirs from
here; `sealing_chain` is the one-signer chain of the credit and governance tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from genesis import CliqueSpec, build_genesis, canonical_json
from orchestrator.geth.client import http_web3
from orchestrator.geth.command import GethNode, geth_argv, geth_config_toml
from orchestrator.logs import log_tail
from orchestrator.runtime.process import LocalProcess, ProcessRuntime
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


@contextlib.contextmanager
def sealing_chain(
    geth: str,
    root: Path,
    spec: CliqueSpec,
    *,
    signer: LocalAccount | None = None,
    max_peers: int = 0,
) -> Iterator[DevNode]:
    """A one-signer chain that seals from block 1 on: `spec.signers` gets a fresh key (or
    `signer`: two chains with one genesis and one signer fork from each other until they
    peer), written to geth's keystore and unlocked, as only a test chain does; geth starts
    on free ports, and the context yields once block 1 exists; geth stops by its pid
    after. `max_peers` of 3 or more lets it peer (`admin_addPeer` over IPC, no discovery;
    geth dials nobody below 3: a third of its peers may be dialled)."""
    signer = signer or Account.create()
    spec = dataclasses.replace(spec, signers=[signer.address])
    node = dev_node(geth, root / "node", spec, signer=signer.address, max_peers=max_peers)
    password = secrets.token_urlsafe(24)
    keystore = Account.encrypt(signer.key, password, kdf="scrypt", iterations=1 << 12)
    (node.datadir / "keystore").mkdir(parents=True, exist_ok=True)
    (node.datadir / "keystore" / f"UTC--test--{signer.address[2:].lower()}").write_text(
        json.dumps(keystore)
    )
    password_file = root / "password"
    password_file.write_text(password)
    password_file.chmod(0o600)
    argv = [  # a test chain whose geth holds its one key (never how poactl runs geth)
        *node.argv,
        "--unlock", signer.address,
        "--password", str(password_file),
        "--allow-insecure-unlock",
        "--verbosity", "2",
    ]  # fmt: skip
    log_file = root / "geth.log"
    process: LocalProcess = ProcessRuntime().start(argv, name=root.name, log_file=log_file)
    try:
        w3 = http_web3(node.rpc_url, timeout=2)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"geth exited with {process.poll()}:\n{_tail(log_file)}")
            with contextlib.suppress(Exception):
                if w3.eth.block_number >= 1:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"geth did not seal a block in 60 s:\n{_tail(log_file)}")
            time.sleep(0.3)
        yield dataclasses.replace(node, log_file=log_file)
    finally:
        process.stop()


def _tail(path: Path) -> str:
    return "\n".join(log_tail(path, 30))
