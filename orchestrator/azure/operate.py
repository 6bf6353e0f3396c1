"""What a bank's operator does on chain and in its consortium data, from one of the
bank's own VMs (`poactl azure operate ...`, with the VM's agent file and identity):

- `init`: the founder makes the consortium's pseudonym secret in its vault and deploys
  the credit registry (both idempotent);
- `admit`: a member proposes a joining bank (its ballot counts as an approval), gives
  its admin and writer accounts gas money, and records where it publishes, so every
  member's agents start reading it;
- `vote`: another member approves or rejects it (or a removal);
- `remove`: a member proposes voting a bank out;
- `share_secret`: once admitted, the joining bank gets the pseudonym secret, sealed to
  its admin key and published in this bank's consortium data.

The same steps as `poactl members ...` on one machine, against a bank's own store, vault
and node (`Site`) instead of a local state directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.boundaries import ConsortiumData, Secret, Store, Vault
from orchestrator.credit.deployment import RegistryRecord, deploy
from orchestrator.credit.pseudonym import share_secret as ensure_secret
from orchestrator.errors import ConfigError, StateError
from orchestrator.governance import Governance
from orchestrator.network.create import MemberInfo, read_member
from orchestrator.network.data import directory_entry
from orchestrator.network.names import (
    PSEUDONYM_SECRET_NAME,
    admin_key_name,
    directory_blob,
    tx_key_name,
)
from orchestrator.network.sealed import read_admin_key, share_sealed

GAS_MONEY_WEI = 10**20  # 100 ether: a joining bank's first transactions


@dataclass(frozen=True)
class Site:
    """One bank as its VMs see it: its name, store (with its view of the others), vault
    and its own node's JSON-RPC."""

    member: str
    store: Store
    vault: Vault
    rpc_url: str
    open_data: Callable[[str], ConsortiumData]  # another bank's data, by its URL

    def key(self, name: str) -> Secret:
        secret = self.vault.get_secret(name)
        if secret is None:
            raise StateError(
                f"{self.member}'s vault holds no {name}",
                obj=name,
                hint="the bank's leader agent creates it at its first start: check that the "
                "agents run (`systemctl status poactl-agent`)",
            )
        return secret

    def governance(self) -> Governance:
        return Governance(self.rpc_url, admin_key=self.key(admin_key_name(self.member)))


@dataclass(frozen=True)
class Initialized:
    secret_created: bool
    registry: RegistryRecord
    deployed: bool


def init(site: Site) -> Initialized:
    """The founder's services: the pseudonym secret and the credit registry."""
    created = ensure_secret({site.member: site.vault})
    outcome = deploy(
        site.store, rpc_url=site.rpc_url, deployer_key=site.key(tx_key_name(site.member))
    )
    return Initialized(created, outcome.registry, outcome.sent)


def joining_member(site: Site, url: str, name: str) -> MemberInfo:
    """The descriptor `name` publishes at `url` (its deployment's consortiumDataUrl)."""
    data = site.open_data(url)
    published = [n.removeprefix("members/").removesuffix(".json") for n in data.list("members/")]
    if published != [name]:
        raise ConfigError(
            f"{url} does not publish {name!r}'s member descriptor"
            + (f" (it publishes {', '.join(published)})" if published else ""),
            obj=url,
            hint="give the joining bank's consortiumDataUrl (its deployment's output)",
        )
    info = read_member(data, name)
    assert info is not None
    return info


@dataclass(frozen=True)
class Admission:
    info: MemberInfo
    block: int
    status: str
    approvals: int
    threshold: int


def admit(site: Site, name: str, url: str) -> Admission:
    """Propose `name` (publishing at `url`) as a member, with this bank's approval."""
    info = joining_member(site, url, name)
    gov = site.governance()
    if gov.is_member(info.admin):
        raise ConfigError(
            f"{name!r} is already a member", obj=name,
            hint="`poactl azure operate share-secret` gives it the secret",
        )  # fmt: skip
    inclusion = gov.propose_add(info.admin, name).wait(timeout=60)
    site.store.write(directory_blob(site.member, name), directory_entry(name, url))
    for account in (info.admin, info.tx_account):
        gov.fund(account, GAS_MONEY_WEI).wait(timeout=60)
    at = inclusion.block_number
    proposals = gov.proposals(block=at)  # one call: one node's state behind the balancer
    mine = max((p for p in proposals if p.target == info.admin and p.kind == "add"),
               key=lambda p: p.id)  # fmt: skip
    return Admission(info, at, mine.status, len(mine.approvals), gov.threshold())


def vote(site: Site, name: str, *, approve: bool) -> int:
    """Approve or reject the open proposal about `name`; the block it went into."""
    gov = site.governance()
    open_ = [p for p in gov.proposals(open_only=True) if p.name == name]
    if not open_:
        raise ConfigError(
            f"no open proposal about {name!r}", obj=name,
            hint="a member proposes it first: `poactl azure operate admit`",
        )  # fmt: skip
    return gov.vote(open_[-1].id, approve=approve).wait(timeout=60).block_number


def remove(site: Site, name: str) -> int:
    """Propose voting member `name` out (this bank's approval); the block it went into."""
    gov = site.governance()
    admin = {m.name: m.admin for m in gov.members()}.get(name)
    if admin is None:
        raise ConfigError(f"{name!r} is not a member", obj=name, hint="members vote on members")
    return gov.propose_remove(admin).wait(timeout=60).block_number


def share_secret(site: Site, name: str, url: str) -> str:
    """Seal the pseudonym secret to admitted member `name`'s admin key; the blob's name."""
    admin = {m.name: m.admin for m in site.governance().members()}.get(name)
    if admin is None:
        raise ConfigError(f"{name!r} is not a member: the secret goes only to an admitted bank",
                          obj=name, hint="the members vote first")  # fmt: skip
    public_key = read_admin_key(site.open_data(url), name, admin=admin)
    return share_sealed(site.store, site.key(PSEUDONYM_SECRET_NAME), name=PSEUDONYM_SECRET_NAME,
                        sender=site.member, recipient=name, public_key=public_key)  # fmt: skip
