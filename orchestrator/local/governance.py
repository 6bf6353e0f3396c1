"""Governance on the local consortium: a bank's view of the Governance contract through
its own endpoint (its balancer when it has one), and its admin key from its own vault.
The commands that call this module are in `orchestrator.cli.members`.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError, StateError
from orchestrator.geth.ipc import ipc_probe
from orchestrator.governance import Governance
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.registry import app_endpoints, require_answering, running_network
from orchestrator.network.create import MemberInfo, read_member
from orchestrator.network.names import PSEUDONYM_SECRET_NAME, admin_key_name
from orchestrator.network.sealed import read_admin_key, share_sealed
from orchestrator.wiring import open_consortium_data


def bank_governance(local: LocalConsortium, bank: str | None = None) -> Governance:
    """Governance through `bank`'s endpoint, writing with its admin key; with no bank,
    read-only through the founder's endpoint."""
    consortium = local.load()
    running_network(local)
    member = bank or consortium.members()[0]
    apps = app_endpoints(local, consortium)
    if member not in apps:
        raise ConfigError(
            f"{member!r} is not a bank of this consortium",
            obj="--as",
            hint="banks: " + ", ".join(consortium.members()),
        )
    app = apps[member]
    require_answering(app.name, app.url, app.token)
    key = None
    if bank is not None:
        key = local.vault(member).get_secret(admin_key_name(member))
        if key is None:
            raise StateError(
                f"{member}'s vault holds no governance admin key ({admin_key_name(member)})",
                obj=member,
                hint="this state dir was made by an older poactl; recreate it with "
                "`poactl destroy` and `poactl up`",
            )
    return Governance(app.url, admin_key=key, rpc_token=app.token)


def sealing_signers(local: LocalConsortium) -> list[str] | None:
    """Clique's signers as the first node that answers sees them (None: none answers)."""
    for node in local.load().nodes:
        signers = ipc_probe(local.layout.node(node.name).ipc, "clique_getSigners", [])
        if isinstance(signers, list):
            return [str(s) for s in signers]
    return None


def read_joining_member(url: str, name: str) -> MemberInfo:
    """The descriptor a joining bank publishes at `url`, which must be `name`'s."""
    data = open_consortium_data(url)
    published = [n.removeprefix("members/").removesuffix(".json") for n in data.list("members/")]
    if published != [name]:
        raise ConfigError(
            f"{url} does not publish {name!r}'s member descriptor"
            + (f" (it publishes {', '.join(published)})" if published else ""),
            obj=url,
            hint="give the URL `poactl join` printed for that bank",
        )
    info = read_member(data, name)
    assert info is not None
    return info


def seal_pseudonym_secret(
    local: LocalConsortium, bank: str, recipient: str, *, admin: str, url: str
) -> str:
    """Seal `bank`'s pseudonym secret to `recipient`'s admitted `admin` (its public key as
    published at `url`), publish it in `bank`'s consortium data; the blob's name."""
    public_key = read_admin_key(open_consortium_data(url), recipient, admin=admin)
    secret = local.vault(bank).get_secret(PSEUDONYM_SECRET_NAME)
    if secret is None:
        raise StateError(
            f"{bank}'s vault holds no pseudonym secret to share",
            obj=PSEUDONYM_SECRET_NAME,
            hint="share it from a bank that has it (a founder, or an admitted member)",
        )
    return share_sealed(
        local.store(bank), secret, name=PSEUDONYM_SECRET_NAME, sender=bank, recipient=recipient,
        public_key=public_key,
    )  # fmt: skip
