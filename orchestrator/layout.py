"""Where things live in a local consortium's state directory (paths only, no I/O).

<state>/consortium.yaml       the settings this consortium was created from
<state>/store.sqlite          the local store: network info, enodes, leases, heartbeats
<state>/vaults/<member>/      each bank's local encrypted vault
<state>/nodes/<node>/         one agent: agent.yaml, agent.json (its state), agent.log,
                              datadir/, config.toml, genesis.json, genesis.sha256, geth.log,
                              status.json (geth's supervision), agent.lock

On a VM the agent's own state dir has the layout of one `nodes/<node>/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

UNIX_SOCKET_PATH_MAX = 107


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/poactl/default, i.e. ~/.local/state/poactl/default."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "poactl" / "default"


@dataclass(frozen=True)
class NodePaths:
    root: Path

    @property
    def datadir(self) -> Path:
        return self.root / "datadir"

    @property
    def keystore(self) -> Path:
        return self.datadir / "keystore"

    @property
    def nodekey(self) -> Path:
        return self.datadir / "geth" / "nodekey"

    @property
    def genesis_marker(self) -> Path:
        """sha256 of the genesis this node's chain was initialised from."""
        return self.root / "genesis.sha256"

    @property
    def ipc(self) -> Path:
        return self.datadir / "geth.ipc"

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.json"

    @property
    def agent_config(self) -> Path:
        return self.root / "agent.yaml"

    @property
    def agent_status(self) -> Path:
        return self.root / "agent.json"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    @property
    def geth_config(self) -> Path:
        return self.root / "config.toml"

    @property
    def geth_log(self) -> Path:
        return self.root / "geth.log"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def lock(self) -> Path:
        return self.root / "agent.lock"


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "consortium.yaml"

    @property
    def store(self) -> Path:
        return self.root / "store.sqlite"

    def vault(self, member: str) -> Path:
        return self.root / "vaults" / member

    def node(self, name: str) -> NodePaths:
        return NodePaths(self.root / "nodes" / name)
