"""When a node seals with a validator identity, how it stops (fencing), and how a
stalled chain is set moving again. All of it over geth's IPC socket.

* geth always runs `--mine` with the node's *follower* key as etherbase (see
  `orchestrator.geth.keys`): mining marks the node synced, so it accepts peers' blocks from
  its first second (a node that is neither mining nor synced discards them), yet it
  cannot seal. When the agent holds an identity's lease it writes that identity's
  keystore and calls `authorize`; `tick` (twice a second, from the supervisor) then
  waits until the node has a peer whose eth handshake is done and is not behind
  (`eth_syncing`), unlocks the key with the password from the vault, makes it the
  etherbase and restarts the miner (waiting until `eth_mining` is false in between:
  geth stops its miner asynchronously, and a `miner_start` before that is a no-op
  that leaves Clique signing as the follower). Sealing before peering lets signers seal competing
  blocks at one height. A consortium's only signer starts at once.
* `fence` undoes it: `miner_stop`, `personal_lockAccount`, delete the keystore file.
  geth 1.13 signs a block *before* Clique's delay (up to one period plus the
  out-of-turn wiggle) and `miner_stop` does not cancel that delay, so a block signed
  just before the fence can still appear that much later. The agent therefore fences
  `fence_margin` seconds before its lease could expire (`orchestrator.agent.fencing`). If
  geth does not answer, `fence` returns False and the agent stops geth outright.
* Clique can still fork at one height (block 1 especially: its timestamp lies in the
  past, so out-of-turn signers seal without waiting). geth then wedges: a broadcast
  only teaches a peer the *parent's* total difficulty, and with fewer than five peers
  sync runs only on its 10 s timer, toward a peer it believes is heavier, which no
  peer now is. So when the head has not moved for `stall_after` seconds, the node
  re-handshakes its static peers (`admin_removePeer` + `admin_addPeer`): the fresh eth
  Status carries each side's true total difficulty, and the next sync round moves the
  lighter side onto the heavier chain. It also authorizes the identity again, in case a
  `miner_start` did not take.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.boundaries import Secret
from orchestrator.errors import NodeError
from orchestrator.geth.health import is_behind
from orchestrator.geth.ipc import ipc_probe, ipc_request
from orchestrator.geth.keys import remove_identity_keystores, write_identity_keystore

log = logging.getLogger(__name__)

BLOCK_VANITY = "poactl"  # the first bytes of extraData in every block we seal
MINER_STOP_WAIT = 2.0  # seconds to wait for geth's miner to stop before restarting it


@dataclass(frozen=True)
class Identity:
    """A validator identity the agent holds the lease of, with its secrets."""

    index: int
    address: str
    key: Secret
    password: Secret


class Sealer:
    """The node's sealing switch. The agent's lease loop calls `authorize`/`fence`; the
    supervisor calls `reset` when geth (re)starts and `tick` while it runs."""

    def __init__(
        self,
        ipc_path: Path,
        keystore_dir: Path,
        *,
        needs_peers: Callable[[], bool],
        static_peers: Callable[[], Sequence[str]],
        stall_after: float = 8.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.ipc_path = ipc_path
        self.keystore_dir = keystore_dir
        self._needs_peers = needs_peers
        self._static_peers = static_peers
        self.stall_after = stall_after
        self._on_change = on_change  # told when sealing starts (the agent rewrites its status)
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self.sealing = False
        self._head: int | None = None
        self._head_since = time.monotonic()

    @property
    def identity(self) -> Identity | None:
        return self._identity

    def reset(self) -> None:
        """geth (re)started: it is not sealing and its head is unknown."""
        with self._lock:
            self.sealing, self._head, self._head_since = False, None, time.monotonic()

    def authorize(self, identity: Identity) -> None:
        """Seal as `identity` once the node is ready (its keystore is written now)."""
        with self._lock:
            write_identity_keystore(self.keystore_dir, identity.key, identity.password)
            self._identity, self.sealing = identity, False

    def fence(self) -> bool:
        """Stop sealing now. True when geth confirmed it (or there is nothing to stop);
        False when geth did not answer and must be stopped by the caller."""
        with self._lock:
            identity, was_sealing = self._identity, self.sealing
            self._identity, self.sealing = None, False
            remove_identity_keystores(self.keystore_dir)
            if identity is None:
                return True
            confirmed = not self.ipc_path.exists()
            for method, params in (
                ("miner_stop", []),
                ("personal_lockAccount", [identity.address]),
            ):
                try:
                    ipc_request(self.ipc_path, method, params, timeout=1.0)
                    confirmed = True  # geth answered (miner_stop answers null)
                except NodeError as e:
                    log.debug("fence: %s", e)
            log.warning(
                "fenced identity %d (%s)%s%s",
                identity.index,
                identity.address,
                "" if was_sealing else " before it sealed",
                "" if confirmed else "; geth did not answer",
            )
            return confirmed

    def tick(self) -> bool:
        """Start sealing if authorized and ready, heal a stall; True when sealing has just
        started."""
        with self._lock:
            identity = self._identity
            if identity is None:
                return False
            if self.sealing:
                self._heal_if_stalled()
                return False
            if self._needs_peers() and not self._ready():
                return False
            # geth's account manager learns of a new keystore file asynchronously; until
            # it lists the account, miner_start cannot authorize it (Clique keeps the
            # follower as signer and the node silently never seals). Wait for it.
            accounts: Any = ipc_probe(self.ipc_path, "eth_accounts", [])
            if identity.address.lower() not in (str(a).lower() for a in accounts or []):
                return False
            unlocked = ipc_probe(
                self.ipc_path,
                "personal_unlockAccount",
                [identity.address, identity.password.value, 0],
            )
            if unlocked is not True:  # geth's keystore watcher may not have seen it yet
                return False
            # The worker retries a failed seal only on a new head or new transactions,
            # miner_start alone is a no-op while mining, and a task whose seal hash it
            # has seen is skipped. So: a new vanity (new seal hash), the identity as
            # etherbase (Clique's signer), then restart the miner, which commits fresh
            # work that the unlocked key can sign.
            try:
                ipc_request(self.ipc_path, "miner_setExtra", [BLOCK_VANITY])
                ipc_request(self.ipc_path, "miner_setEtherbase", [identity.address])
                ipc_request(self.ipc_path, "miner_stop", [])
                # miner_stop only signals the miner; a miner_start that comes before it
                # has stopped is a no-op, and Clique keeps the old (follower) signer.
                if not self._miner_stopped():
                    log.info("the miner has not stopped yet; will start sealing next tick")
                    return False
                ipc_request(self.ipc_path, "miner_start", [])
            except NodeError as e:  # try again on the next tick
                log.info("could not start sealing yet: %s", e.what)
                return False
            self.sealing = True
        self._on_change()
        return True

    def _miner_stopped(self, timeout: float = MINER_STOP_WAIT) -> bool:
        """Wait until `eth_mining` answers false (geth stops its miner asynchronously)."""
        deadline = time.monotonic() + timeout
        while ipc_request(self.ipc_path, "eth_mining", []) is not False:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _ready(self) -> bool:
        peers: Any = ipc_probe(self.ipc_path, "admin_peers", [])
        syncing: Any = ipc_probe(self.ipc_path, "eth_syncing", [])
        eth_peers = [
            p for p in peers or [] if isinstance(p.get("protocols", {}).get("eth"), dict)
        ]  # "handshake" while the eth Status exchange is still under way
        return len(eth_peers) > 0 and not is_behind(syncing)

    def _heal_if_stalled(self) -> None:
        head: Any = ipc_probe(self.ipc_path, "eth_blockNumber", [])
        if not isinstance(head, str):
            return
        now = time.monotonic()
        if int(head, 16) != self._head:
            self._head, self._head_since = int(head, 16), now
            return
        peers = list(self._static_peers())
        if now - self._head_since < self.stall_after or not peers:
            return
        log.warning(
            "head stuck at %d for %.0fs; re-handshaking %d peers so sync can settle a fork",
            self._head,
            now - self._head_since,
            len(peers),
        )
        for enode in peers:
            ipc_probe(self.ipc_path, "admin_removePeer", [enode])  # True, or None: next stall
            ipc_probe(self.ipc_path, "admin_addPeer", [enode])
        self._head_since = now
        self.sealing = False  # and authorize again on the next tick, in case it did not take
