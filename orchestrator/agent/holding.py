"""The validator identity an agent holds: taking a free identity's lease, renewing it,
and fencing (sealing stops at the key) when a renewal did not get through in time.

The lease loop calls `keep` (renew when due, else take a free identity when the agent
is ready); the watchdog calls `check_deadline` so the agent fences on time even while a
store call hangs. The keeper and the sealer move together under the agent's lock.
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
        renewed = keeper.renew()
        self.metrics.renewal(ok=renewed)
        if renewed:
            self._write_status()
            return
        with self.lock:  # lost to someone else (broken): stop sealing at once
            if self.keeper is keeper:
                self.fence(f"lost the lease {keeper.name}")

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
            keeper = self.keeper
            if keeper is not None and keeper.held and time.monotonic() >= keeper.fence_at:
                self.fence(
                    f"could not renew {keeper.name} in time; "
                    f"stopped sealing {keeper.margin:.1f}s before the lease can expire"
                )

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
