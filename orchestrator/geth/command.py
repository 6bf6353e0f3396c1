"""geth's command line and config file as pure data, and finding the pinned binary.

`geth_argv` and `geth_config_toml` are pure: the same node gives the same argv and
TOML on every machine, and tests compare them directly. JSON-RPC listens on loopback
with only `eth,net,web3` over HTTP; `clique`, `admin` and `personal` stay on IPC for the
agent. Peering is static only: no discovery, `--netrestrict`, and p2p listens on
127.0.0.1 (set in the TOML, since `--port` would listen on every interface).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ToolError

GETH_VERSION = "1.13.15"
HTTP_APIS = "eth,net,web3"
LOOPBACK_NET = "127.0.0.0/8"
_REPO_GETH = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "geth"


@dataclass(frozen=True)
class GethNode:
    """Everything geth's command line needs to know about one node."""

    datadir: Path
    config_file: Path
    ipc_path: Path
    network_id: int
    http_port: int
    authrpc_port: int
    max_peers: int
    metrics_port: int | None = None  # geth's Prometheus metrics (--metrics), on rpc_host
    etherbase: str | None = None  # set on validators: mine as this address
    external_signer: Path | None = None  # the agent's signer socket (`--signer`)
    gas_limit: int | None = None
    rpc_host: str = "127.0.0.1"  # where JSON-RPC listens (the member's balancer reaches it)
    peer_network: str = LOOPBACK_NET  # --netrestrict: the CIDR the member nodes live in
    tuning: tuple[str, ...] = ()  # cache, miner and txpool flags (config.Tuning.flags)


def geth_argv(geth: str, node: GethNode) -> list[str]:
    """The full argv that starts `node` (no environment, no PATH lookup)."""
    argv = [
        geth,
        "--datadir", str(node.datadir),
        "--config", str(node.config_file),
        "--networkid", str(node.network_id),
        "--syncmode", "full",
        "--nodiscover",
        "--netrestrict", node.peer_network,
        "--nat", "none",
        "--maxpeers", str(node.max_peers),
        "--ipcpath", str(node.ipc_path),
        "--http",
        "--http.addr", node.rpc_host,
        "--http.port", str(node.http_port),
        "--http.api", HTTP_APIS,
        # WebSocket on the same port (subscriptions through the bank's balancer), with
        # the same loopback address and the same three namespaces.
        "--ws",
        "--ws.addr", node.rpc_host,
        "--ws.port", str(node.http_port),
        "--ws.api", HTTP_APIS,
        "--authrpc.addr", "127.0.0.1",
        "--authrpc.port", str(node.authrpc_port),
    ]  # fmt: skip
    if node.gas_limit is not None:
        argv += ["--miner.gaslimit", str(node.gas_limit)]
    argv += node.tuning
    if node.metrics_port is not None:
        argv += [
            "--metrics",
            "--metrics.addr",
            node.rpc_host,
            "--metrics.port",
            str(node.metrics_port),
        ]
    if node.external_signer is not None:
        # The agent signs: geth's keystore is off and it never holds a validator key.
        argv += ["--signer", str(node.external_signer)]
    if node.etherbase is not None:
        # --mine from the start (as the keyless follower until the agent switches it to
        # an identity it holds): geth then counts as synced and accepts peers' blocks.
        argv += ["--mine", "--miner.etherbase", node.etherbase]
    return argv


def geth_config_toml(
    listen_port: int, static_nodes: Sequence[str], *, listen_host: str = "127.0.0.1"
) -> str:
    """geth's TOML config: p2p on loopback and the static peers (1.13 ignores static-nodes.json)."""
    peers = ", ".join(json.dumps(e) for e in sorted(static_nodes))
    return f'[Node.P2P]\nListenAddr = "{listen_host}:{listen_port}"\nStaticNodes = [{peers}]\n'


def locate_geth(explicit: str | None) -> str:
    """The geth to run: `explicit`, else the repo's `.tools/bin/geth`, else `geth` on PATH."""
    if explicit:
        candidate: str | None = explicit
    elif _REPO_GETH.exists():
        candidate = str(_REPO_GETH)
    else:
        candidate = shutil.which("geth")
    if not candidate or not Path(candidate).is_file():
        raise ToolError(
            f"geth {GETH_VERSION} not found",
            obj=explicit or "geth",
            hint="run scripts/setup.sh (builds it into .tools/bin), or pass --geth PATH",
        )
    check_geth_version(candidate)
    return str(Path(candidate).resolve())


def check_geth_version(geth: str) -> None:
    try:
        out = subprocess.run(
            [geth, "version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ToolError(
            f"cannot run `geth version`: {e}",
            obj=geth,
            hint="run scripts/setup.sh to build the pinned geth",
        ) from e
    found = re.search(r"^Version:\s*(\S+)", out, re.MULTILINE)
    version = found.group(1) if found else "unknown"
    if not version.startswith(GETH_VERSION):
        raise ToolError(
            f"geth is version {version}; poactl needs {GETH_VERSION} "
            "(the last release that seals Clique blocks)",
            obj=geth,
            hint="run scripts/setup.sh, or pass --geth with a 1.13.15 binary",
        )


def geth_init_argv(geth: str, datadir: Path, genesis: Path) -> list[str]:
    """`geth init`: write the genesis block into a new datadir."""
    return [geth, "--datadir", str(datadir), "init", str(genesis)]
