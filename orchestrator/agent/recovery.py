"""The node's care while geth runs: the sealing switch, and the recoveries.

* **A stuck node.** geth can stand still behind its peers and still say it is not
  syncing: after a freeze (SIGSTOP, a VM paused or live-migrated) its downloader waits
  for answers to requests made before the freeze, with timeouts that the freeze itself
  inflated (up to a minute each; issue 18 saw two minutes). When the one assessment
  (`geth.lag`, the node's head against the other nodes' heartbeats) says the node lags
  and its head has not moved for `stuck_after` (longer than geth's own 10 s sync cycle),
  the agent has geth restarted: a fresh geth syncs at once. Restarts in a row wait
  `RESTART_BACKOFF` between them, and never count toward FATAL. Its `/health` fails
  meanwhile, so the balancer sends it nothing. (Re-handshaking the peers does not help
  here: the downloader keeps waiting on its old requests.)
* **A fork of equal weight.** When the chain has stalled and another node's head weighs
  exactly as much as this node's, on another branch, one branch is chosen the same way
  everywhere and a node on a losing branch steps off it (`agent.forks`).
* **A stalled chain while sealing.** Clique can fork at one height (block 1 especially:
  its timestamp lies in the past, so out-of-turn signers seal without waiting), and
  geth wedges: a broadcast only teaches a peer the *parent's* total difficulty, and with
  fewer than five peers sync runs only on its 10 s timer. A sealing node re-handshakes
  its peers (`admin_removePeer` + `admin_addPeer`): the fresh eth Status carries each
  side's true total difficulty. It does so at most `MAX_REHANDSHAKES` times a stall
  (dropping peers again and again only makes them flap), and switches geth's miner to
  the identity again, in case a `miner_start` did not take.

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
from orchestrator.agent.forks import SYNC_CYCLE_SECONDS, Fork, equal_weight_fork, rewind_to_lose
from orchestrator.agent.sealing import Sealer
from orchestrator.geth.health import sync_heads
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.lag import Assessment, Head, stall_after, stuck_after

log = logging.getLogger(__name__)

RESTART_BACKOFF = (30.0, 60.0, 120.0, 300.0)  # the pause after the n-th restart in a row
LEVEL_RESETS_AFTER = 300.0  # a node level with the chain this long starts the steps anew
MAX_REHANDSHAKES = 2  # per stall, while sealing


class Action(enum.Enum):
    NOTHING = "nothing"
    REHANDSHAKE = "re-handshake the peers"
    RESTART = "restart geth"
    REWIND = "step off a losing branch"


class StuckRecovery:
    """What to do about the node, given its assessment at `now` (call once a tick)."""

    def __init__(self, period: float, *, restart_backoff: Sequence[float] = RESTART_BACKOFF):
        self.stuck_after, self.stall_after = stuck_after(period), stall_after(period)
        self.restart_backoff = tuple(restart_backoff)
        self.restarts = 0  # restarts in a row (since the node was last level for long)
        self._restart_ok_at = 0.0
        self._level_since: float | None = None
        self._healed_at: float | None = None  # the last re-handshake of this stall
        self._heals = 0  # re-handshakes during this stall
        self._rewound_at: float | None = None

    def decide(
        self, chain: Assessment, *, sealing: bool, now: float, fork: Fork | None = None
    ) -> tuple[Action, str]:
        if chain.stuck:
            self._level_since = None
            return self._unstick(chain, now)
        if not chain.lagging:
            self._level_since = self._level_since or now
            if now - self._level_since >= LEVEL_RESETS_AFTER:
                self.restarts = 0
        if not chain.stalled:
            self._healed_at, self._heals = None, 0
            return Action.NOTHING, ""
        if fork is not None and fork.own_loses and self._may_rewind(now):
            self._rewound_at = now
            return Action.REWIND, "; ".join(chain.chain_problems)
        healed = self._healed_at
        if (
            sealing
            and self._heals < MAX_REHANDSHAKES
            and (healed is None or now - healed >= self.stall_after)
        ):
            self._healed_at, self._heals = now, self._heals + 1
            return Action.REHANDSHAKE, "; ".join(chain.chain_problems)
        return Action.NOTHING, ""

    def _may_rewind(self, now: float) -> bool:
        """Once per two stall periods: the node needs a sync round to take the winner."""
        return self._rewound_at is None or now - self._rewound_at >= 2 * self.stall_after

    def _unstick(self, chain: Assessment, now: float) -> tuple[Action, str]:
        if now < self._restart_ok_at:
            return Action.NOTHING, ""  # the last restart needs time (and a backoff)
        pause = self.restart_backoff[min(self.restarts, len(self.restart_backoff) - 1)]
        self.restarts += 1
        self._restart_ok_at = now + pause
        return Action.RESTART, "; ".join(chain.node_problems)


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
        self.settle_seconds = SYNC_CYCLE_SECONDS + 2 * period  # a sync round, and a block
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
        td = head.get("totalDifficulty")
        own = Head(
            int(head["number"], 16), now, int(head["timestamp"], 16), "this node",
            str(head["hash"]), int(td, 16) if isinstance(td, str) else None,
        )  # fmt: skip
        self.last = chain = self.chain.assess(own, [sync[1]] if sync else [], now)
        fresh = [h for h in self.chain.others() if now - h.seen_at <= self.chain.fresh_for]
        fork = equal_weight_fork(own, fresh) if chain.stalled else None
        action, why = self.policy.decide(chain, sealing=self.sealing, now=now, fork=fork)
        if action is Action.REHANDSHAKE:
            peers = list(self._peers())
            log.warning("%s; re-handshaking %d peers so sync starts again", why, len(peers))
            rehandshake(self.ipc, peers)
            self.sealer.switch_again()
        elif action is Action.REWIND and fork is not None:
            self.sealer.pause(self.settle_seconds)  # no block on the losing branch meanwhile
            rewind_to_lose(self.ipc, fork)
        elif action is Action.RESTART:
            self._restart = f"{why}, and geth does not catch up by itself"


def rehandshake(ipc: Path, enodes: Sequence[str]) -> None:
    """Drop and re-add each static peer: a fresh eth handshake carries each side's head
    and total difficulty, and starts a new sync round toward the heavier one."""
    for enode in enodes:
        ipc_probe(ipc, "admin_removePeer", [enode])  # True, or None: the next round retries
        ipc_probe(ipc, "admin_addPeer", [enode])
