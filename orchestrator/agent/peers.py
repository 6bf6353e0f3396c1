"""The node's static peers: every other node's published enode, added to the running
geth over IPC and kept in its `config.toml` for its next start.

No discovery: the enodes in the store are the whole peer list. A malformed record is
logged once and skipped; the agent that owns it rewrites it on its next start.
"""

from __future__ import annotations

import logging

from orchestrator.agent.paths import NodePaths
from orchestrator.boundaries import Store
from orchestrator.geth.command import geth_config_toml
from orchestrator.geth.ipc import ipc_probe
from orchestrator.network.peers import read_enodes

log = logging.getLogger(__name__)


class StaticPeers:
    """What this node peers with; `refresh` is called by the agent's lease loop."""

    def __init__(
        self, paths: NodePaths, *, member: str, node: str, host: str, p2p_port: int
    ) -> None:
        self.paths, self.member, self.node = paths, member, node
        self.host, self.p2p_port = host, p2p_port
        self._peers: dict[tuple[str, str], str] = {}  # (member, node) -> enode
        self._reported: set[str] = set()  # bad records already logged

    def enodes(self) -> list[str]:
        return list(self._peers.values())

    def refresh(self, store: Store) -> None:
        enodes, problems = read_enodes(store)
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.error(
                    "%s: ignoring a bad enode record: %s (hint: the agent that owns it "
                    "rewrites it on its next start; delete it if that node is gone)",
                    self.node,
                    problem,
                )
        peers = {k: e for k, e in enodes.items() if k != (self.member, self.node)}
        if peers == self._peers and self.paths.geth_config.exists():
            return
        for enode in set(peers.values()) - set(self._peers.values()):
            ipc_probe(self.paths.ipc, "admin_addPeer", [enode])  # True, or None: next start
        self._peers = peers
        self.paths.geth_config.write_text(
            geth_config_toml(self.p2p_port, sorted(peers.values()), listen_host=self.host)
        )
