"""Where one agent keeps its node's files (paths only, no I/O).

<root>/agent.yaml      the agent's settings      <root>/agent.json   its status record
<root>/agent.log       its log                   <root>/agent.lock   one agent per node
<root>/datadir/        geth's datadir (nodekey, chain, geth.ipc, signer.ipc)
<root>/config.toml     geth's static peers       <root>/geth.log     geth's output
<root>/genesis.json    the published genesis     <root>/genesis.sha256  what init used
<root>/status.json     geth's supervision record

On a VM `<root>` is the agent's `state_dir`; on one machine it is `nodes/<node>/` of the
local consortium's state dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodePaths:
    root: Path

    @property
    def datadir(self) -> Path:
        return self.root / "datadir"

    @property
    def keystore(self) -> Path:
        """geth's keystore: with an external signer geth never writes a key here."""
        return self.datadir / "keystore"

    @property
    def signer_ipc(self) -> Path:
        """The agent's external-signer socket (mode 0600), which only geth dials."""
        return self.datadir / "signer.ipc"

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
