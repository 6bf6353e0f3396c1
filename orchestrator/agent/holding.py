"""The validator identity an agent holds: taking a free identity's lease, renewing it,
and fencing (sealing stops at the key) when a renewal did not get through in time.

`IdentityHolder` is the one owner of the identity's lease: its keeper and the sealer's
authorization change together, under the agent's lock, whoever asks — the lease loop
(`keep`: renew when due, else take a free identity when the agent is ready), the
watchdog (`check_deadline`, which fences on time even while a store call hangs), or the
agent stopping (`release`). A store call is never made under the lock (the watchdog
must not wait for it); its answer counts only if the keeper is still the one held.

The fence's message says what happened, measured against the lease's expiry: stopped
so many seconds before the lease could expire; or, when the process was not running
(paused, a VM frozen) past the expiry, that the lease expired meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.agent.fencing import fence_margin
from orchestrator.agent.identity import load_identity, preferred_order
from orchestrator.agent.sealing import Sealer
from orchestrator.agent.status import AgentState, FenceRecord
from orchestrator.boundaries import Store, Vault
from orchestrator.config import Member
from orchestrator.errors import PoaError
from orchestrator.network.create import NetworkInfo, read_member
from orchestrator.network.leases import LeaseKeeper
from orchestrator.network.names import identity_lease

log = logging.getLogger(__name__)

WATCHDOG_SECONDS = 0.2  # the watchdog's round
PAUSED_AFTER = 2.0  # a watchdog round this late means the process was not running


class IdentityHolder:
    """One agent's hold on one of its member's validator identities (or none)."""

    def __init__(
        self,
        *,
        store: Store,
        vault: Vault,
        member: str,
        node: str,
        spec: Member,
        lease_seconds: int,
        sealer: Sealer,
        metrics: AgentMetrics,
        lock: threading.RLock,
        state: Callable[[], AgentState],
        transition: Callable[[AgentState, str], None],
        write_status: Callable[[], None],
        signer_count: Callable[[], int],
    ) -> None:
        self.store, self.vault, self.member, self.node = store, vault, member, node
        self.spec, self.lease_seconds = spec, lease_seconds
        self.sealer, self.metrics, self.lock = sealer, metrics, lock
        self._state, self._transition, self._write_status = state, transition, write_status
        self._signer_count = signer_count
        self.keeper: LeaseKeeper | None = None
        self.fences = 0
        self.last_fence: FenceRecord | None = None
        self._last_round = time.monotonic()  # the watchdog's last round

    def keep(self, network: NetworkInfo | None, *, acquire: bool, ready: bool) -> None:
        """Renew the held lease when due; else take a free identity when `acquire` (its
        turn came) and `ready` (a validator agent whose geth follows the chain)."""
        keeper = self.keeper
        if keeper is not None and keeper.held:
            if keeper.renew_due:
                self._renew(keeper)
            return
        if acquire and ready and network is not None:
            self._acquire(network)

    def _renew(self, keeper: LeaseKeeper) -> None:
        with self.lock:
            if self.keeper is not keeper:  # fenced since the caller looked
                return
            if time.monotonic() >= keeper.expires_at:  # do not even ask: it expired
                self.fence(self._expired_why(keeper, time.monotonic()))
                return
        renewed = keeper.renew()  # outside the lock: the watchdog must not wait on it
        with self.lock:
            if self.keeper is not keeper:  # fenced while the store answered: it stands
                return
            self.metrics.renewal(ok=renewed)
            if renewed:
                self._write_status()
            else:  # lost (broken, taken, or expired before it was sent): stop sealing
                self.fence(f"lost the lease {keeper.name}: {keeper.lost_why}")

    def own_signers(self, network: NetworkInfo) -> tuple[str, ...]:
        """The member's identities: in the genesis for a founder; in its published
        descriptor for a bank that joined later (none until its leader publishes it)."""
        if self.member in network.members:
            return network.signers(self.member)
        info = read_member(self.store, self.member)
        return info.signers if info is not None else ()

    def _acquire(self, network: NetworkInfo) -> None:
        signers = self.own_signers(network)
        for i in preferred_order(self.node, len(signers)):
            keeper = LeaseKeeper(
                self.store,
                identity_lease(self.member, i),
                duration=self.lease_seconds,
                holder=self.node,
                margin=fence_margin(network.block_period, self._signer_count()),
            )
            if not keeper.try_acquire():
                continue
            try:
                identity = load_identity(
                    self.vault, self.member, i, signers[i], custody=self.spec.custody
                )
            except BaseException:
                keeper.release()
                raise
            with self.lock:
                self.keeper = keeper
                self.sealer.authorize(identity, keeper)
                self._transition(AgentState.SEALING, f"holds identity {i} ({identity.address})")
            return
        if self._state() is AgentState.FENCED:  # the store answers again; all are held
            self._transition(AgentState.FOLLOWING, "every identity is held; a spare now")

    def check_deadline(self) -> None:
        """The watchdog's round: fence when the held lease reached its fence time."""
        with self.lock:
            now = time.monotonic()
            keeper = self.keeper
            if keeper is not None and keeper.held and now >= keeper.fence_at:
                if now >= keeper.expires_at:
                    self.fence(self._expired_why(keeper, now))
                else:
                    self.fence(
                        f"could not renew {keeper.name} in time; stopped sealing "
                        f"{keeper.expires_at - now:.1f}s before the lease can expire"
                    )
            self._last_round = now

    def _expired_why(self, keeper: LeaseKeeper, now: float) -> str:
        """The lease is past its expiry: say so, and whether this process was running."""
        expired = now - keeper.expires_at
        silent = now - self._last_round
        if silent >= PAUSED_AFTER:
            return (
                f"the lease {keeper.name} expired {expired:.1f}s ago while this process was "
                f"not running (paused or frozen for about {silent:.0f}s); stopped sealing "
                "as it resumed"
            )
        return f"the lease {keeper.name} expired {expired:.1f}s ago before a renewal got through"

    def fence(self, why: str) -> None:
        """Stop sealing now (caller holds the lock): the signer refuses from this moment."""
        keeper = self.keeper
        if keeper is not None:
            keeper.forget()
            self.last_fence = FenceRecord(
                at=time.time(),
                lease=keeper.name,
                lease_expires_by=keeper.renewed_wall + keeper.duration,
            )
        self.keeper = None
        self.sealer.fence()  # the signer refuses from now on, whatever geth does
        self.fences += 1
        self.metrics.fenced()
        self._transition(AgentState.FENCED, why)

    def release(self) -> None:
        """Stopping: fence and give the identity's lease back so a spare takes it at once
        (caller holds the lock)."""
        self.sealer.fence()
        keeper, self.keeper = self.keeper, None
        release_lease(keeper, self.node)


def release_lease(keeper: LeaseKeeper | None, node: str) -> None:
    """Give a held lease back; a store that does not answer lets it expire instead."""
    if keeper is not None and keeper.held:
        try:
            keeper.release()
        except PoaError as e:  # it expires on its own
            log.warning("%s: could not release %s: %s", node, keeper.name, e)
