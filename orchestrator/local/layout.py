"""Where things live in a local consortium's state directory (paths only, no I/O).

<state>/consortium.yaml       the settings this consortium was created from
<state>/joined.json           a bank that joined a running network: the member and URL
<state>/proposed.json         banks proposed from here: their consortium data URLs
<state>/banks/<member>/store.sqlite   each bank's own store: its leases, and the
                              consortium data it writes (network info, enodes, heartbeats)
<state>/banks/<member>/published/    what the bank publishes for the others, read-only
                              to them (a file:// URL; in Azure a container and a SAS URL)
<state>/vaults/<member>/      each bank's local encrypted vault
<state>/nodes/<node>/         one agent: agent.yaml, agent.json (its state), agent.log,
                              datadir/, config.toml, genesis.json, genesis.sha256, geth.log,
                              status.json (geth's supervision), agent.lock

Each `nodes/<node>/` is an agent's own state dir (`orchestrator.agent.paths`), as on a VM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agent.paths import NodePaths

UNIX_SOCKET_PATH_MAX = 107


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/poactl/default, i.e. ~/.local/state/poactl/default."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "poactl" / "default"


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "consortium.yaml"

    @property
    def joined(self) -> Path:
        """A bank that joined a running network: where it joined from (`local.join`)."""
        return self.root / "joined.json"

    @property
    def proposed(self) -> Path:
        """Banks proposed for membership from here -> their consortium data URLs."""
        return self.root / "proposed.json"

    def store(self, member: str) -> Path:
        return self.root / "banks" / member / "store.sqlite"

    def published(self, member: str) -> Path:
        return self.root / "banks" / member / "published"

    def vault(self, member: str) -> Path:
        return self.root / "vaults" / member

    def node(self, name: str) -> NodePaths:
        return NodePaths(self.root / "nodes" / name)
