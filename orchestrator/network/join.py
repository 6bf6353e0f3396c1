"""Joining a running network: what a new bank takes from one member's published
consortium data, and the checks it makes before trusting it.

A member's publication holds its own descriptor (`members/<it>.json`) and the network's
shared blobs: the genesis and the network information, which name each other (the
information carries the genesis's sha256, the genesis the chain id). `fetch_network`
refuses data that is not a consortium's, a genesis whose hash does not match, and a
network other than the one the joining bank's settings name. The new bank's nodes then
check the genesis against the chain itself: a peer on another genesis refuses them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.boundaries import ConsortiumData
from orchestrator.config import ConsortiumFile
from orchestrator.errors import ConfigError, StateError
from orchestrator.network.create import NetworkInfo, read_network
from orchestrator.network.data import shown_url
from orchestrator.network.names import GENESIS, NETWORK_INFO

CHAIN_FIELDS = ("chain_id", "block_period", "epoch", "gas_limit")
MEMBER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")  # config.MemberName


@dataclass(frozen=True)
class JoinSource:
    """A running network as one member publishes it."""

    url: str
    member: str  # the bank whose publication this is
    network: NetworkInfo
    network_info: bytes  # as published and checked
    genesis: bytes
    chain: dict[str, int]  # CHAIN_FIELDS, read from the genesis

    def settings_for(self, mine: ConsortiumFile) -> ConsortiumFile:
        """The joining bank's settings with the network's chain parameters; a parameter
        the bank set itself must agree with the network's."""
        for name in CHAIN_FIELDS:
            if name in mine.model_fields_set and getattr(mine, name) != self.chain[name]:
                raise ConfigError(
                    f"{self.url} publishes a network with {name} {self.chain[name]}; "
                    f"your settings say {getattr(mine, name)}: this is another chain",
                    obj=name,
                    hint="check --from (the member's consortium data URL) and your "
                    f"consortium file; leave {name} out to take the network's",
                )
        return mine.model_copy(update=self.chain)


def fetch_network(data: ConsortiumData, url: str, *, joining: str) -> JoinSource:
    """The network published at `url` (opened as `data`), checked, for bank `joining`."""
    url = shown_url(url)  # a SAS signature never reaches a message
    if not MEMBER_NAME.match(joining):
        raise ConfigError(
            f"{joining!r} is not a member name",
            obj="--member",
            hint="2-32 lowercase letters, digits and '-', a letter first (e.g. bank-c)",
        )
    info_blob = data.read(NETWORK_INFO)
    if info_blob is None:
        raise ConfigError(
            f"{url} holds no consortium data (no {NETWORK_INFO})",
            obj=url,
            hint="give the URL a member publishes its consortium data at (on one machine "
            "`poactl members` lists them; in Azure the member's read-only SAS URL)",
        )
    network = read_network(data)
    assert network is not None
    genesis = data.read(GENESIS)
    if genesis is None or hashlib.sha256(genesis.data).hexdigest() != network.genesis_sha256:
        raise StateError(
            f"the genesis published at {url} does not match the network information's "
            f"hash {network.genesis_sha256[:12]}…",
            obj=GENESIS,
            hint="the member's publication is damaged or tampered with; join from another "
            "member's URL, and tell that member",
        )
    chain = _chain_of(genesis.data, url)
    if chain["chain_id"] != network.chain_id or chain["block_period"] != network.block_period:
        raise StateError(
            "the genesis and the network information name different chains",
            obj=url,
            hint="the member's publication is damaged; join from another member's URL",
        )
    publishers = [n.removeprefix("members/").removesuffix(".json") for n in data.list("members/")]
    if len(publishers) != 1:
        raise ConfigError(
            f"{url} publishes {len(publishers)} member descriptors; a member publishes its own",
            obj=url,
            hint="give one member's consortium data URL",
        )
    if joining in network.members or joining == publishers[0]:
        raise ConfigError(
            f"{joining!r} is already a member of this network",
            obj=joining,
            hint="pick the name your bank is known by that no member has",
        )
    return JoinSource(url, publishers[0], network, info_blob.data, genesis.data, chain)


def _chain_of(genesis: bytes, url: str) -> dict[str, int]:
    try:
        doc: Any = json.loads(genesis)
        config = doc["config"]
        return {
            "chain_id": int(config["chainId"]),
            "block_period": int(config["clique"]["period"]),
            "epoch": int(config["clique"]["epoch"]),
            "gas_limit": int(doc["gasLimit"], 16),
        }
    except (ValueError, KeyError, TypeError) as e:
        raise StateError(
            f"the genesis published at {url} is not a Clique genesis ({type(e).__name__})",
            obj=GENESIS,
            hint="join from another member's URL",
        ) from e
