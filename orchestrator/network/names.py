"""Names of what a consortium keeps: blobs and leases in a store, secrets in a vault.

    members/<member>.json          a member's signer addresses (identity order), its
                                   transaction account and its governance admin
                                   account; its leader publishes them
    network/genesis.json           the canonical Clique genesis (the founder's leader)
    network/networkinfo.json       chain id, period, members, signers, genesis sha256
    enodes/<node>.json             a node's enode URL (its agent)
    leases/<member>/leader         the member's leader lease
    leases/<member>/identity-<i>   validator identity i's lease; the holder in the blob
    heartbeats/<node>.json         an agent's heartbeat

One module so that every reader and writer agrees on them, and so that a light client
(the credit SDK) can name a secret without importing the network's machinery.
"""

from __future__ import annotations

GENESIS = "network/genesis.json"
NETWORK_INFO = "network/networkinfo.json"
NETWORK_INFO_VERSION = 2  # 2: members have a governance admin; Governance in the genesis


def member_blob(member: str) -> str:
    return f"members/{member}.json"


def enode_blob(node: str) -> str:
    return f"enodes/{node}.json"


def heartbeat_blob(node: str) -> str:
    return f"heartbeats/{node}.json"


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


def admin_key_name(member: str) -> str:
    """The member's admin account in governance: its one ballot, its validators."""
    return f"{member}-admin-key"


PSEUDONYM_SECRET_NAME = "consortium-pseudonym-secret"  # noqa: S105 - a name
