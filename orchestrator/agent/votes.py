"""Governance decides, Clique follows: a sealing agent votes geth's signers toward the
validator set the Governance contract holds.

Clique changes its signers only through votes in the headers that signers seal, and
geth keeps a signer's votes in memory (`clique_propose`), so every sealing agent runs
`reconcile` once a block period: it reads the decided set (`validators()` at
`GOVERNANCE_ADDRESS`, an `eth_call` through its own node) and Clique's signers
(`clique_getSigners`), proposes to add each decided address that does not sign yet and,
once none is missing, to drop each signer that is no longer decided (geth casts one
random proposal per block: dropping while adding could pass the drops first and leave
too few signers), and discards every other proposal (a
stale `true` would vote a removed address back in later). A restarted geth has lost its
proposals; the next round casts them again. Votes reset at each epoch; the next rounds
cast them again too. Clique passes a change with more than half of the current
*signers*, which may differ from governance's majority of members: the contract decides
who should sign, the signers' votes only carry it out.

A chain without the contract (no code at the address), or a contract that answers an
empty set, gets no votes: an agent never votes every signer out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from genesis import GOVERNANCE_ADDRESS
from orchestrator.agent.status import CliqueStatus
from orchestrator.errors import NodeUnreachable, RpcRefused
from orchestrator.geth.ipc import ipc_request

log = logging.getLogger(__name__)

VALIDATORS_CALL = "0x" + function_signature_to_4byte_selector("validators()").hex()


@dataclass(frozen=True)
class CliqueVotes:
    """One reconciliation: what governance decided, who signs, the votes in flight."""

    decided: tuple[str, ...] | None  # None: this chain has no governance contract
    signers: tuple[str, ...]
    voting: dict[str, bool] = field(default_factory=dict)  # address -> add (True) / drop

    @property
    def settled(self) -> bool:
        return self.decided is None or not self.voting


def decided_validators(ipc: Path, *, timeout: float = 2.0) -> tuple[str, ...] | None:
    """The contract's validator set at the node's head; None if there is no contract."""
    code = ipc_request(ipc, "eth_getCode", [GOVERNANCE_ADDRESS, "latest"], timeout=timeout)
    if not code or code == "0x":
        return None
    call = {"to": GOVERNANCE_ADDRESS, "data": VALIDATORS_CALL}
    answer = ipc_request(ipc, "eth_call", [call, "latest"], timeout=timeout)
    (addresses,) = abi_decode(["address[]"], bytes.fromhex(str(answer)[2:]))
    return tuple(to_checksum_address(a) for a in addresses)


def reconcile(
    ipc: Path,
    *,
    allow: Callable[[Mapping[str, bool]], None] = lambda _votes: None,
    timeout: float = 2.0,
) -> CliqueVotes:
    """Propose what moves Clique's signers toward the decided set; discard the rest.

    `allow` hears the votes wanted before geth is asked to cast them: the external
    signer signs only headers whose vote is among them. Raises NodeUnreachable or
    RpcRefused when geth cannot be asked; the caller tries again next round.
    """
    decided = decided_validators(ipc, timeout=timeout)
    signers = tuple(
        to_checksum_address(a) for a in ipc_request(ipc, "clique_getSigners", [], timeout=timeout)
    )
    proposals: dict[str, bool] = {
        to_checksum_address(a): bool(v)
        for a, v in (ipc_request(ipc, "clique_proposals", [], timeout=timeout) or {}).items()
    }
    wanted: dict[str, bool] = {}
    if decided:
        wanted = {a: True for a in decided if a not in signers}
        if not wanted:  # adds first: dropping before adding could leave too few signers
            wanted = {a: False for a in signers if a not in decided}
    allow(wanted)
    for address, add in wanted.items():
        if proposals.get(address) is not add:
            ipc_request(ipc, "clique_propose", [address, add], timeout=timeout)
    for address in proposals.keys() - wanted.keys():
        ipc_request(ipc, "clique_discard", [address], timeout=timeout)
    return CliqueVotes(decided, signers, wanted)


def discard_all(ipc: Path, *, timeout: float = 2.0) -> None:
    """Forget every proposal geth holds (a node that stopped sealing)."""
    for address in ipc_request(ipc, "clique_proposals", [], timeout=timeout) or {}:
        ipc_request(ipc, "clique_discard", [address], timeout=timeout)


class CliqueVoter:
    """One agent's votes, once a block period from its votes thread: while it seals,
    toward governance's decision (`reconcile`); otherwise none, and a stale vote left in
    geth's memory is discarded so it cannot ride on a later block. `clique` is the last
    reconciliation (None: unknown), for `poactl status`; `on_change` hears it change."""

    def __init__(
        self,
        ipc: Path,
        *,
        node: str,
        allow: Callable[[Mapping[str, bool]], None],
        sealing: Callable[[], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.ipc, self.node = ipc, node
        self._allow, self._sealing, self._on_change = allow, sealing, on_change
        self.clique: CliqueStatus | None = None

    def vote(self) -> None:
        if not self._sealing():
            if self.clique is not None:
                self._allow({})
                with contextlib.suppress(NodeUnreachable, RpcRefused):
                    discard_all(self.ipc)
                self.set(None)
            return
        try:
            votes = reconcile(self.ipc, allow=self._allow)
        except (NodeUnreachable, RpcRefused) as e:
            log.debug("%s: cannot reconcile Clique's votes now: %s", self.node, e)
            self.set(None)  # unknown: `poactl status` must not show a stale match
            return
        self.set(CliqueStatus(
            decided=list(votes.decided) if votes.decided is not None else None,
            signers=list(votes.signers),
            voting=votes.voting,
        ))  # fmt: skip

    def set(self, clique: CliqueStatus | None) -> None:
        if clique != self.clique:
            if clique is not None and clique.voting:
                log.info("%s: voting in Clique: %s", self.node, clique.voting)
            self.clique = clique
            self._on_change()
