"""When a validator may seal, and how a stalled chain is set moving again.

geth starts without `--mine`; the supervisor calls `SealingGate.tick` twice a second.

* geth runs with `--mine` but its signing key locked: mining marks the node synced, so
  it accepts peers' blocks from its first second (a node that is neither mining nor
  synced discards them), yet it cannot seal. The gate opens, unlocking the key over
  IPC with the password only the supervisor reads, once the node has a peer whose eth
  handshake is done and it is not behind (`eth_syncing`). Sealing before peering lets
  signers seal competing blocks at one height. A node that is the consortium's only
  signer opens the gate at once.
* Clique can still fork at one height (block 1 especially: its timestamp lies in the
  past, so out-of-turn signers seal without waiting). geth then wedges: a node at
  genesis discards propagated blocks, a broadcast only teaches a peer the *parent's*
  total difficulty, and with fewer than five peers sync runs only on its 10 s timer,
  toward a peer it believes is heavier, which no peer now is. "Signed recently" then
  stops both sides for good. So when the head has not moved for `stall_after`
  seconds, the node re-handshakes its static peers (`admin_removePeer` +
  `admin_addPeer`): the fresh eth Status carries each side's true total difficulty,
  and the next sync round moves the lighter side onto the heavier chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.boundaries import Secret
from orchestrator.health import ipc_call, is_behind

log = logging.getLogger(__name__)

BLOCK_VANITY = "poactl"  # the first bytes of extraData in every block we seal


@dataclass
class SealingGate:
    ipc_path: Path
    signer: str
    password_file: Path
    needs_peers: bool  # False when this node is the consortium's only signer
    static_peers: Sequence[str] = ()
    stall_after: float = 8.0
    sealing: bool = False
    _head: int | None = field(default=None, repr=False)
    _head_since: float = field(default_factory=time.monotonic, repr=False)

    def reset(self) -> None:
        """geth (re)started: it is not sealing and its head is unknown."""
        self.sealing, self._head, self._head_since = False, None, time.monotonic()

    def tick(self) -> bool:
        """Open the gate if ready, heal a stall; True when sealing has just started."""
        if not self.sealing:
            if self.needs_peers and not self._ready():
                return False
            password = Secret(self.password_file.read_text())
            unlocked = ipc_call(
                self.ipc_path, "personal_unlockAccount", [self.signer, password.value, 0]
            )
            if unlocked is not True:
                return False
            # The worker retries a failed seal only on a new head or new transactions,
            # miner_start alone is a no-op while mining, and a task whose seal hash it
            # has seen is skipped. So: a new vanity (new seal hash), then restart the
            # miner, which commits fresh work that the unlocked key can sign.
            ipc_call(self.ipc_path, "miner_setExtra", [BLOCK_VANITY])
            ipc_call(self.ipc_path, "miner_stop", [])
            ipc_call(self.ipc_path, "miner_start", [])
            self.sealing = True
            return True
        self._heal_if_stalled()
        return False

    def _ready(self) -> bool:
        peers: Any = ipc_call(self.ipc_path, "admin_peers", [])
        syncing: Any = ipc_call(self.ipc_path, "eth_syncing", [])
        eth_peers = [
            p for p in peers or [] if isinstance(p.get("protocols", {}).get("eth"), dict)
        ]  # "handshake" while the eth Status exchange is still under way
        return len(eth_peers) > 0 and not is_behind(syncing)

    def _heal_if_stalled(self) -> None:
        head: Any = ipc_call(self.ipc_path, "eth_blockNumber", [])
        if not isinstance(head, str):
            return
        now = time.monotonic()
        if int(head, 16) != self._head:
            self._head, self._head_since = int(head, 16), now
            return
        if now - self._head_since < self.stall_after or not self.static_peers:
            return
        log.warning(
            "head stuck at %d for %.0fs; re-handshaking %d peers so sync can settle a fork",
            self._head,
            now - self._head_since,
            len(self.static_peers),
        )
        for enode in self.static_peers:
            ipc_call(self.ipc_path, "admin_removePeer", [enode])
            ipc_call(self.ipc_path, "admin_addPeer", [enode])
        self._head_since = now
