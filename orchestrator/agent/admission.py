"""What an agent does about the consortium's membership once its geth runs
(`MembershipDuties`, from the agent's votes thread):

- every agent reads the publications of members its bank did not read yet (a bank that
  joined after it started), from the directories of the banks it reads (`network.data`);
- a bank that joined after the genesis takes its seats: once the members have admitted
  it, its leader adds its own validators and its transaction account as a writer, with
  its admin key, as a founder's were at block 0 (Clique then follows governance through
  the sealing agents' votes, `agent.votes`), and receives the consortium's pseudonym
  secret, sealed to its admin key by a member (`network.sealed`), into its vault — only
  the secret that matches the commitment more than half of the other members publish:
  a faulty member cannot hand it a wrong one.

One round per call; the agent calls it from its votes thread while it leads, until it
answers "done". A refusal by the contract (over the cap, an address registered to
another member) is final: it is logged with its rule and not retried. What a bank waits
for (its admission, the members' commitments, an envelope) is logged at INFO each time
it changes, and again as a WARNING while it has lasted long; a round that fails is
logged once in full, then as a reminder (`retry.Recurring`): a bank that is never
seated says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from orchestrator.boundaries import Secret, Store, Vault
from orchestrator.errors import ContractRevert, PoaError, StateError
from orchestrator.governance.client import Governance
from orchestrator.network.create import MemberInfo, NetworkInfo, read_member
from orchestrator.network.data import ConsortiumStore
from orchestrator.network.names import PSEUDONYM_SECRET_NAME, admin_key_name, publisher_of
from orchestrator.network.sealed import (
    agreed_commitment,
    open_sealed,
    publish_commitment,
    secret_commitment,
)
from orchestrator.retry import Recurring

log = logging.getLogger(__name__)

WAITING, DONE = "waiting", "done"
DISCOVER_EVERY = 15.0  # seconds between looks for members that joined later
WAIT_WARNING_AFTER = 600.0  # a bank waiting this long to be seated says so as a WARNING


class Waiting:
    """What a duty waits for: INFO when it changes, a WARNING once it has lasted long."""

    def __init__(self, who: str, *, warn_after: float = WAIT_WARNING_AFTER) -> None:
        self.who, self.warn_after = who, warn_after
        self._what: str | None = None
        self._since = self._warned = 0.0

    def tell(self, what: str | None) -> None:
        now = time.monotonic()
        if what != self._what:
            self._what, self._since, self._warned = what, now, now
            if what is not None:
                log.info("%s: waits: %s", self.who, what)
        elif what is not None and now - self._warned >= self.warn_after:
            self._warned = now
            log.warning("%s: still waits after %.0fs: %s", self.who, now - self._since, what)


class MembershipDuties:
    """One bank agent's membership duties; `run` once a block period while geth runs."""

    def __init__(
        self,
        *,
        member: str,
        store: Store,
        vault: Vault,
        rpc_url: str,
    ) -> None:
        self.member, self.store, self.vault, self.rpc_url = member, store, vault, rpc_url
        self.seated = False  # a joined bank's validators are registered in governance
        self.settled = False  # ... and its vault holds the consortium's pseudonym secret
        self._next_discovery = 0.0
        self._discovery = Recurring(
            log, member, level=logging.INFO, remind_every=120.0, escalate_after=600.0
        )
        self._seating = Recurring(log, member, remind_every=300.0)
        self.waiting = Waiting(member)

    def run(self, network: NetworkInfo | None, *, leader: bool) -> None:
        try:
            self._discover(leader=leader)
        except PoaError as e:  # the node or a publication is not there yet: next round
            self._discovery.failed("reading the members that joined later", e)
        else:
            self._discovery.succeeded()
        if leader and network is not None and self.member not in network.members:
            try:
                self.waiting.tell(self._take_seats())
            except PoaError as e:  # the node or the store is not there yet: next round
                self._seating.failed("taking its seats", e)
            else:
                self._seating.succeeded()

    def _discover(self, *, leader: bool) -> None:
        """Read the members this bank does not read yet; the leader also keeps the bank's
        directory of what it reads up to date. The lease loop's next peer refresh dials
        the new banks' nodes."""
        store = self.store
        if not isinstance(store, ConsortiumStore) or time.monotonic() < self._next_discovery:
            return
        self._next_discovery = time.monotonic() + DISCOVER_EVERY
        store.discover(vouchers(Governance(self.rpc_url)))
        if leader:
            store.publish_directory()

    def _take_seats(self) -> str | None:
        """One round; what the bank still waits for (None: nothing)."""
        if self.settled:
            return None
        info = read_member(self.store, self.member)
        key = self.vault.get_secret(admin_key_name(self.member))
        if info is None or key is None:
            return "its leader has not published its member descriptor and admin key yet"
        self.seated = self.seated or take_seats(self.rpc_url, key, info) == DONE
        if not self.seated:
            return (
                f"admission: the members have not voted {self.member} in yet "
                f"(`poactl members vote {self.member} --approve --as BANK`)"
            )
        members = [m.name for m in Governance(self.rpc_url).members()]
        waits = receive_secret(self.store, self.vault, self.member, key, members=members)
        self.settled = waits is None
        return waits


def vouchers(gov: Governance) -> dict[str, set[str]]:
    """Member -> the members whose directory entry for it counts: for a founder, the
    founders (they configured each other); for a bank admitted later, the member that
    proposed it (it knew where the bank publishes)."""
    members = gov.members()
    names = {m.admin: m.name for m in members}
    founders = {m.name for m in members if m.since == 0}
    proposers: dict[str, set[str]] = {}
    for p in gov.proposals():
        if p.kind == "add" and p.status == "approved" and p.proposer in names:
            proposers[p.name] = {names[p.proposer]}
    return {m.name: founders if m.since == 0 else proposers.get(m.name, set()) for m in members}


def take_seats(rpc_url: str, admin_key: Secret, info: MemberInfo) -> str:
    """WAITING while the bank is not a member yet; DONE once its validators and writer are
    registered (or the contract refused them for good)."""
    gov = Governance(rpc_url, admin_key=admin_key)
    if not gov.is_member(info.admin):
        return WAITING
    seated = gov.member(info.admin)
    try:
        missing = [s for s in info.signers if s not in seated.validators]
        if missing:
            gov.add_validators(missing).wait(timeout=60)
            log.info("%s: admitted; added its validators %s", info.member, ", ".join(missing))
        if info.tx_account not in seated.writers:
            gov.add_writers([info.tx_account]).wait(timeout=60)
            log.info("%s: added its writer %s", info.member, info.tx_account)
    except ContractRevert as e:
        log.error("%s: the governance refused to seat it: %s", info.member, e)
    return DONE


def receive_secret(
    store: Store, vault: Vault, member: str, admin_key: Secret, *, members: Collection[str]
) -> str | None:
    """Take the consortium's pseudonym secret into `member`'s vault; what it still waits
    for (None: the vault holds it). `members` are the consortium's members now (on
    chain). The secret comes from an envelope sealed to `member`'s admin key by another
    member and published by that member itself, and is taken only if it matches the
    commitment more than half of the other members publish: a faulty member's envelope
    (another secret) is refused and logged."""
    if vault.get_secret(PSEUDONYM_SECRET_NAME) is not None:
        return None
    senders = set(members) - {member}
    agreed, progress = agreed_commitment(store, senders, PSEUDONYM_SECRET_NAME)
    if agreed is None:
        return f"the consortium's pseudonym secret: {progress}"
    for name in store.list("sealed/"):
        sender = publisher_of(name)
        if not name.endswith(f"/{member}.json") or sender not in senders:
            continue
        blob = store.read(name)
        if blob is None:
            continue
        try:
            secret = open_sealed(
                blob.data, name=PSEUDONYM_SECRET_NAME, recipient=member, admin_key=admin_key,
                sender=sender,
            )  # fmt: skip
        except StateError as e:
            log.error("%s: %s", name, e)
            continue
        if secret_commitment(PSEUDONYM_SECRET_NAME, secret) != agreed:
            log.error(
                "%s: %s sealed a pseudonym secret that does not match the commitment most "
                "members publish; refused (hint: ask %s to share the consortium's secret "
                "again, `poactl members share-secret`)",
                name, sender, sender,
            )  # fmt: skip
            continue
        vault.set_secret(PSEUDONYM_SECRET_NAME, secret)
        publish_commitment(store, member, PSEUDONYM_SECRET_NAME, secret)
        log.info("%s: received the consortium's pseudonym secret from %s", member, name)
        return None
    return "the consortium's pseudonym secret: no member has sealed it to this bank yet"
