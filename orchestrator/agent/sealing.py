"""When a node seals with a validator identity, and how it stops (fencing).

* geth never holds a validator key: the agent is its external signer
  (`orchestrator.signer`), and geth runs `--mine` from its first second with a keyless
  *follower* etherbase (`orchestrator.geth.keys`), so it counts as synced and accepts
  peers' blocks, yet cannot seal. When the agent takes an identity's lease it calls
  `authorize`: the signer's policy holds the identity's key and lease at once, and
  `tick` (twice a second, from the supervisor) waits until the node has a peer whose
  eth handshake is done and is not behind (`eth_syncing`), then switches geth's miner
  to the identity: `miner_stop`, wait until `eth_mining` is false (geth stops its miner
  asynchronously, and a `miner_start` before that is a no-op that leaves Clique signing
  as the old address), a new vanity, `miner_setEtherbase`, `eth_accounts` (geth caches
  the signer's account list; this refreshes it, and must list the identity), then
  `miner_start`, which authorizes Clique anew. Sealing before peering lets signers seal
  competing blocks at one height. A consortium's only signer starts at once.
* `fence` takes effect at the key: the signer refuses every request from that moment,
  whatever geth does. geth 1.13 signs a block *before* Clique's delay (up to one period
  plus the out-of-turn wiggle), so a block signed just before the fence can still
  appear that much later: the agent fences `fence_margin` seconds before its lease
  could expire (`orchestrator.agent.fencing`). The next tick switches geth's miner back
  to the follower.
* A stalled chain while sealing is the node's care's business (`agent.recovery`): it
  re-handshakes the peers and asks for `switch_again`, in case a `miner_start` did not
  take.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import NodeError
from orchestrator.geth.health import sync_heads
from orchestrator.geth.ipc import ipc_probe, ipc_request
from orchestrator.geth.lag import assess
from orchestrator.signer.keys import ValidatorKey
from orchestrator.signer.policy import SigningLease, SigningPolicy

log = logging.getLogger(__name__)

BLOCK_VANITY = "poactl"  # the first bytes of extraData in every block we seal
MINER_STOP_WAIT = 2.0  # seconds to wait for geth's miner to stop before restarting it


@dataclass(frozen=True)
class Identity:
    """A validator identity the agent holds the lease of, with the key that signs for it."""

    index: int
    key: ValidatorKey

    @property
    def address(self) -> str:
        return self.key.address


class Sealer:
    """The node's sealing switch. The agent's lease loop calls `authorize`/`fence`; the
    node's care (`agent.recovery.NodeCare`) calls `reset` when geth (re)starts and
    `tick` while it runs."""

    def __init__(
        self,
        ipc_path: Path,
        policy: SigningPolicy,
        *,
        needs_peers: Callable[[], bool],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.ipc_path = ipc_path
        self.policy = policy
        self._needs_peers = needs_peers
        self._on_change = on_change  # told when sealing starts (the agent rewrites its status)
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self._mining_as: str = policy.follower  # the etherbase geth mines as (argv: follower)
        self.sealing = False
        self._paused_until = 0.0  # monotonic: no sealing before (a fork being settled)

    @property
    def identity(self) -> Identity | None:
        return self._identity

    def reset(self) -> None:
        """geth (re)started: it mines as the follower and its head is unknown."""
        with self._lock:
            self.sealing = False
            self._mining_as = self.policy.follower

    def authorize(self, identity: Identity, lease: SigningLease) -> None:
        """Seal as `identity` while `lease` is proven, once the node is ready."""
        with self._lock:
            self.policy.hold(identity.key, lease)
            self._identity, self.sealing = identity, False

    def fence(self) -> None:
        """Stop sealing now: the signer refuses from this moment on."""
        self.policy.release()  # first, and without waiting for the lock
        with self._lock:
            identity, was_sealing = self._identity, self.sealing
            self._identity, self.sealing = None, False
        if identity is not None:
            log.warning(
                "fenced identity %d (%s)%s",
                identity.index,
                identity.address,
                "" if was_sealing else " before it sealed",
            )

    def switch_again(self) -> None:
        """Switch geth's miner to the identity again on the next tick (after a stall)."""
        with self._lock:
            self.sealing = False

    def pause(self, seconds: float) -> None:
        """Stop geth's miner now and start it again no sooner than `seconds` from now
        (the node steps off a losing branch and must not seal on it meanwhile)."""
        with self._lock:
            self.sealing = False
            self._paused_until = time.monotonic() + seconds
            try:
                ipc_request(self.ipc_path, "miner_stop", [])
            except NodeError as e:
                log.info("could not stop the miner: %s", e.what)

    def tick(self) -> bool:
        """Start sealing if authorized and ready, or go back to mining as the follower
        after a fence; True when sealing has just started."""
        with self._lock:
            identity = self._identity
            if identity is None:
                if self._mining_as != self.policy.follower:
                    self._switch_to(self.policy.follower)
                return False
            if self.sealing or time.monotonic() < self._paused_until:
                return False
            if self._needs_peers() and not self._ready():
                return False
            if not self._switch_to(identity.address):
                return False
            self.sealing = True
        self._on_change()
        return True

    def _switch_to(self, address: str) -> bool:
        """Make geth mine as `address` (see the module's docstring); False to retry."""
        try:
            ipc_request(self.ipc_path, "miner_stop", [])
            if not self._miner_stopped():
                log.info("the miner has not stopped yet; will switch to %s next tick", address)
                return False
            ipc_request(self.ipc_path, "miner_setExtra", [BLOCK_VANITY])
            ipc_request(self.ipc_path, "miner_setEtherbase", [address])
            accounts = ipc_request(self.ipc_path, "eth_accounts", [])
            if address.lower() not in (str(a).lower() for a in accounts or []):
                log.info("geth does not list %s yet; will switch next tick", address)
                return False
            ipc_request(self.ipc_path, "miner_start", [])
        except NodeError as e:  # try again on the next tick
            log.info("could not switch the miner to %s yet: %s", address, e.what)
            return False
        self._mining_as = address
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
        now = time.time()
        sync = sync_heads(syncing, now)
        level = (
            sync is None
            or not assess(sync[0], [sync[1]], now=now, period=self.policy.block_period).behind
        )  # not even one block behind: sealing there would fork the chain
        return len(eth_peers) > 0 and level
