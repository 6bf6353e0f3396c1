"""The member's leader: whichever of its agents holds the member's *leader* lease creates
what is missing of the member's validator identities in the bank's vault, publishes the
member's descriptor, its admin key and its commitment to the consortium's pseudonym
secret (a bank that joins takes the secret only when it matches what most members
commit to, `network.sealed`), and (the founder's leader) the network.

Leadership is a duty, not a privilege: any agent of the bank may hold the lease, and a
new holder does the same idempotent work again.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.agent.endpoint import AgentMetrics
from orchestrator.boundaries import Store, Vault
from orchestrator.config import Consortium
from orchestrator.network.create import (
    NetworkInfo,
    create_network,
    ensure_member_identities,
    publish_member,
)
from orchestrator.network.data import ConsortiumStore
from orchestrator.network.leases import LeaseKeeper
from orchestrator.network.names import PSEUDONYM_SECRET_NAME, admin_key_name, leader_lease
from orchestrator.network.sealed import publish_admin_key, publish_commitment


class Leadership:
    """One agent's part in its member's leadership."""

    def __init__(
        self,
        *,
        store: Store,
        vault: Vault,
        member: str,
        node: str,
        consortium: Consortium,
        lease_seconds: int,
        metrics: AgentMetrics,
        on_message: Callable[[str], None],
    ) -> None:
        self.store, self.vault, self.member = store, vault, member
        self.consortium, self.metrics, self._on_message = consortium, metrics, on_message
        self.spec = consortium.settings.members[member]
        self.keeper = LeaseKeeper(
            store, leader_lease(member), duration=lease_seconds, holder=node, margin=0.0
        )
        self._duties_done = False

    @property
    def held(self) -> bool:
        return self.keeper.held

    @property
    def renew_due(self) -> bool:
        return self.keeper.renew_due

    def keep(self, network: NetworkInfo | None) -> NetworkInfo | None:
        """Renew or take the leader lease, and do the duties left while it is held; the
        network (created here by the founder's leader, else `network` as given)."""
        if self.keeper.held:
            if self.keeper.renew_due and not self.keeper.renew():
                self._on_message("lost the leader lease")
        elif self.keeper.try_acquire():
            self._duties_done = False
            self._on_message("became the member's leader")
        self.metrics.leader(self.keeper.held)
        if self.keeper.held and not self._duties_done:
            network = self._duties(network)
            self._duties_done = network is not None
        return network

    def _duties(self, network: NetworkInfo | None) -> NetworkInfo | None:
        """Create what is missing of the member's identities and (founder) the network."""
        info = ensure_member_identities(
            self.vault, self.member, self.spec.validators, custody=self.spec.custody
        )
        publish_member(self.store, info)
        admin_key = self.vault.get_secret(admin_key_name(self.member))
        if admin_key is not None:  # others seal vault secrets to it (`network.sealed`)
            publish_admin_key(self.store, self.member, admin_key)
        secret = self.vault.get_secret(PSEUDONYM_SECRET_NAME)
        if secret is not None:
            publish_commitment(self.store, self.member, PSEUDONYM_SECRET_NAME, secret)
        if isinstance(self.store, ConsortiumStore):
            self.store.publish_directory()  # where the banks it reads publish
        if self.member == self.consortium.members()[0] and network is None:
            network = create_network(self.store, self.consortium)
        return network
