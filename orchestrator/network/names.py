"""Names of what a consortium keeps: blobs and leases in a store, secrets in a vault.

    members/<member>.json            a member's signer addresses (identity order), its
                                     transaction account and its governance admin
                                     account; its leader publishes them
    network/genesis.json             the canonical Clique genesis (the founder's leader)
    network/networkinfo.json         chain id, period, members, signers, genesis sha256
    network/contracts.json           the CreditRegistry's address (its deployer)
    enodes/<member>/<node>.json      a node's enode URL (its agent)
    heartbeats/<member>/<node>.json  an agent's heartbeat
    keys/<member>/admin.json         the member's admin public key (`network.sealed`)
    sealed/<sender>/<recipient>.json a vault secret sealed to the recipient's admin key
    directory/<bank>/<member>.json   where <member> publishes, as <bank> knows it
    leases/<member>/leader           the member's leader lease
    leases/<member>/identity-<i>     validator identity i's lease; the holder in the blob

Each bank keeps all of these in its own store. Everything but `leases/` is *consortium
data*: the bank also publishes it, read-only, for the other banks (`publisher_of` says
whose word counts for a name). Leases never leave the bank.

One module so that every reader and writer agrees on them, and so that a light client
(the credit SDK) can name a secret without importing the network's machinery.
"""

from __future__ import annotations

GENESIS = "network/genesis.json"
NETWORK_INFO = "network/networkinfo.json"
NETWORK_INFO_VERSION = 2  # 2: members have a governance admin; Governance in the genesis


def member_blob(member: str) -> str:
    return f"members/{member}.json"


PUBLISHED_PREFIXES = (
    "members/",
    "network/",
    "enodes/",
    "heartbeats/",
    "keys/",
    "sealed/",
    "directory/",
)
SHARED_PREFIX = "network/"  # the same for every member: whoever publishes it


def enode_blob(member: str, node: str) -> str:
    return f"enodes/{member}/{node}.json"


def heartbeat_blob(member: str, node: str) -> str:
    return f"heartbeats/{member}/{node}.json"


def node_of(name: str, kind: str) -> tuple[str, str] | None:
    """(member, node) that the blob `name` of `kind` ("enodes" or "heartbeats") is about,
    read from its path `<kind>/<member>/<node>.json`; None for any other shape. Readers
    key records by this, never by the names inside a document."""
    prefix = f"{kind}/"
    if not name.startswith(prefix) or not name.endswith(".json"):
        return None
    member, slash, node = name[len(prefix) : -len(".json")].partition("/")
    if not (member and slash and node) or "/" in node:
        return None
    return member, node


def directory_blob(publisher: str, member: str) -> str:
    return f"directory/{publisher}/{member}.json"


def is_published(name: str) -> bool:
    """Whether `name` is consortium data (published) rather than the bank's own (leases)."""
    return name.startswith(PUBLISHED_PREFIXES)


def is_shared(name: str) -> bool:
    """The network's blobs (genesis, network information, contract addresses): the same
    for every member, taken from the one member a bank trusts for them."""
    return name.startswith(SHARED_PREFIX)


def publisher_of(name: str) -> str | None:
    """The member whose publication is authoritative for `name`: the member a descriptor,
    enode, heartbeat, key or sealed envelope belongs to. None for shared blobs, for names
    that are not published, and for a name without its member part (nobody's word)."""
    if not is_published(name) or is_shared(name):
        return None
    kind, _, rest = name.partition("/")
    if kind == "members":  # members/<member>.json
        member = rest.removesuffix(".json")
        return member if member and "/" not in rest and rest.endswith(".json") else None
    member, nested, _ = rest.partition("/")  # enodes/<member>/..., heartbeats/<member>/...
    return member if nested and member else None


def leader_lease(member: str) -> str:
    return f"leases/{member}/leader"


def identity_lease(member: str, index: int) -> str:
    return f"leases/{member}/identity-{index}"


# -- secret names in a bank's vault ----------------------------------------------------


def validator_key_name(member: str, index: int) -> str:
    """Identity `index`'s key: a secret (`secrets` custody) or a signing key (`keys`)."""
    return f"{member}-validator-{index}-key"


def tx_key_name(member: str) -> str:
    return f"{member}-tx-key"


def account_ref_key_name(member: str) -> str:
    """The bank's own key for account references (`credit furnish`): HMAC of an account
    number under it is the opaque reference on chain; no other bank holds it."""
    return f"{member}-account-ref-key"


def admin_key_name(member: str) -> str:
    """The member's admin account in governance: its one ballot, its validators."""
    return f"{member}-admin-key"


PSEUDONYM_SECRET_NAME = "consortium-pseudonym-secret"  # noqa: S105 - a name
