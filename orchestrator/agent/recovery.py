"""The node's care while geth runs: the sealing switch, and the recoveries.

* **A stuck node.** geth can stand still behind its peers and still say it is not
  syncing: after a freeze (SIGSTOP, a VM paused or live-migrated) its downloader may
  wait minutes for a peer that timed out. When the one assessment (`geth.lag`, the
  node's head against the other nodes' heartbeats) says the node lags and its head has
  not moved for `stuck_after` (a few periods), the agent re-handshakes its static peers
  (`admin_removePeer` + `admin_addPeer`: a fresh eth Status starts a new sync round);
  if the head still does not move a few periods later, it has geth restarted, at most
  once per `RESTART_BACKOFF` step (the steps grow while the node stays behind). Its
  `/health` fails meanwhile, so the balancer sends it nothing.
* **A stalled chain while sealing.** Clique can fork at one height (block 1 especially:
  its timestamp lies in the past, so out-of-turn signers seal without waiting), and
  geth then wedges: a broadcast only teaches a peer the *parent's* total difficulty,
  and with fewer than five peers sync runs only on its 10 s timer, toward a peer it
  believes heavier, which none now is. When the chain has stalled (`stall_after`) and
  this node seals, it re-handshakes its peers too: the fresh Status carries each side's
  true total difficulty and the next sync round moves the lighter side onto the
  heavier chain. It also switches geth's miner to the identity again, in case a
  `miner_start` did not take.

`StuckRecovery` decides (pure: observations and time in, an action out); `NodeCare`
observes and acts, from the supervisor's thread, twice a second.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.agent.chainview import ChainView
from orchestrator.agent.sealing import Sealer
from orchestrator.geth.health import sync_heads
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.lag import Assessment, Head, stall_after, stuck_after

log = logging.getLogger(__name__)

RESTART_BACKOFF = (30.0, 60.0, 120.0, 300.0)  # the pause after the n-th restart in a row
LEVEL_RESETS_AFTER = 300.0  # a node level with the chain this long starts the steps anew


class Action(enum.Enum):
    NOTHING = "nothing"
    REHANDSHAKE = "re-handshake the peers"
    RESTART = "restart geth"


class StuckRecovery:
    """What to do about the node, given its assessment at `now` (call once a tick)."""

    def __init__(self, period: float, *, restart_backoff: Sequence[float] = RESTART_BACKOFF):
        self.stuck_after, self.stall_after = stuck_after(period), stall_after(period)
        self.restart_backoff = tuple(restart_backoff)
        self.restarts = 0  # restarts in a row (since the node was last level for long)
        self._acted_at: float | None = None  # the last action of this stuck episode
        self._restart_ok_at = 0.0
        self._level_since: float | None = None
        self._healed_at: float | None = None  # the last re-handshake for a stalled chain

    def decide(self, chain: Assessment, *, sealing: bool, now: float) -> tuple[Action, str]:
        if chain.stuck:
            self._level_since = None
            return self._unstick(chain, now)
        self._acted_at = None
        if not chain.lagging:
            self._level_since = self._level_since or now
            if now - self._level_since >= LEVEL_RESETS_AFTER:
                self.restarts = 0
        healed = self._healed_at
        if sealing and chain.stalled and (healed is None or now - healed >= self.stall_after):
            self._healed_at = now
            return Action.REHANDSHAKE, "; ".join(chain.chain_problems)
        return Action.NOTHING, ""

    def _unstick(self, chain: Assessment, now: float) -> tuple[Action, str]:
        why = "; ".join(chain.node_problems)
        if self._acted_at is None:
            self._acted_at = now
            return Action.REHANDSHAKE, why
        if now - self._acted_at < self.stuck_after:
            return Action.NOTHING, ""  # give the last action time to work
        self._acted_at = now
        if now < self._restart_ok_at:
            return Action.REHANDSHAKE, why
        pause = self.restart_backoff[min(self.restarts, len(self.restart_backoff) - 1)]
        self.restarts += 1
        self._restart_ok_at = now + pause
        return Action.RESTART, why


class NodeCare:
    """The supervisor's `SealingSwitch`: ticks the sealer, then looks after the node."""

    def __init__(
        self,
        ipc: Path,
        sealer: Sealer,
        chain: ChainView,
        *,
        peers: Callable[[], Sequence[str]],
        period: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ipc, self.sealer, self.chain, self._peers = ipc, sealer, chain, peers
        self.policy = StuckRecovery(period)
        self._clock = clock
        self._restart: str | None = None
        self.last: Assessment | None = None  # the node's latest assessment

    @property
    def sealing(self) -> bool:
        return self.sealer.sealing

    def reset(self) -> None:
        """geth (re)started."""
        self.sealer.reset()
        self.chain.watch.reset()
        self._restart = None

    def tick(self) -> bool:
        """The sealer's tick (True when sealing has just started), then the recovery."""
        started = self.sealer.tick()
        self._look_after()
        return started

    def restart_wanted(self) -> str | None:
        why, self._restart = self._restart, None
        return why

    def _look_after(self) -> None:
        now = self._clock()
        head = ipc_probe(self.ipc, "eth_getBlockByNumber", ["latest", False], timeout=1.0)
        if not isinstance(head, dict):
            return  # geth is starting, or too busy to answer: next tick
        sync = sync_heads(ipc_probe(self.ipc, "eth_syncing", [], timeout=1.0), now)
        own = Head(int(head["number"], 16), now, int(head["timestamp"], 16), "this node")
        self.last = chain = self.chain.assess(own, [sync[1]] if sync else [], now)
        action, why = self.policy.decide(chain, sealing=self.sealer.sealing, now=now)
        if action is Action.REHANDSHAKE:
            peers = list(self._peers())
            log.warning("%s; re-handshaking %d peers so sync starts again", why, len(peers))
            rehandshake(self.ipc, peers)
            self.sealer.switch_again()
        elif action is Action.RESTART:
            self._restart = f"{why}, and re-handshaking its peers did not help"


def rehandshake(ipc: Path, enodes: Sequence[str]) -> None:
    """Drop and re-add each static peer: a fresh eth handshake carries each side's head
    and total difficulty, and starts a new sync round toward the heavier one."""
    for enode in enodes:
        ipc_probe(ipc, "admin_removePeer", [enode])  # True, or None: the next round retries
        ipc_probe(ipc, "admin_addPeer", [enode])
