"""Read and act on the Governance contract through one node.

Reads need no key. The members and the proposals are each read in one call
(`memberList`, `proposalList`): behind a bank's balancer every call may reach another
node, and one call is one state, whichever answers. A read at a given block (the block
a write landed in) waits a few seconds for a node that has not imported it yet, then
says so (`StateError`), never with a traceback. Writes are signed here with the admin's
key (never by the node) and sent raw; the contract's refusal shows up at gas estimation,
before anything is spent, as a `ContractRevert` naming the rule (`AlreadyVoted`,
`OverCap`, `BelowFloor`, ...) with a hint for the operator.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError

from genesis.clique import InvalidGenesisSpec
from genesis.governance import GOVERNANCE_ADDRESS, NAME_BYTES, name_word
from orchestrator.artifacts import Artifact, load_artifact
from orchestrator.boundaries import Secret
from orchestrator.errors import ConfigError, ContractRevert, StateError
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import (
    AbiRevertDecoder,
    PendingTx,
    TxSender,
    account_sender,
    check_address,
    revert_of,
    transport_error,
)

KINDS = ("add", "remove")  # the contract's Kind enum, in order
STATUSES = ("open", "approved", "rejected", "expired", "refused")  # its Status enum, in order
ALL = 2**64  # proposalList's count: every proposal
UNKNOWN_BLOCK = ("header not found", "unknown block")  # geth, asked about a block it lacks
BLOCK_WAIT_SECONDS = 6.0  # how long a read at a block waits for a node to import it

HINTS: dict[str, str] = {
    "NotAMember": "only a member's admin account may do this (a candidate may only file "
    "its own request); check the account, or `poactl members` for who is a member",
    "AlreadyAMember": "nothing to do: that admin account is already a member",
    "ZeroAddress": "give a real account address",
    "EmptyName": "give the member a name (1 to 32 ASCII characters)",
    "NameTaken": "another member already uses that name; choose another",
    "TooManyMembers": "the consortium has the most members the contract allows",
    "ProposalPending": "a proposal about that account is still open; vote on it instead",
    "UnknownProposal": "no proposal has that id; `poactl members` lists the open ones",
    "ProposalExpired": "the proposal ran out of blocks before a decision; propose again",
    "ProposalDecided": "the proposal is already decided; nothing changes it now",
    "AlreadyVoted": "each admin has one ballot per proposal; withdraw it first to change it",
    "NoBallot": "this admin has no ballot on that proposal to withdraw",
    "OverCap": "a member runs at most the consortium's validator cap; remove one first",
    "BelowFloor": "the consortium keeps at least its floor of validators: the other "
    "members add validators first (docs/governance.md: a member gone for good)",
    "AlreadyRegistered": "that account already serves a member; use a new account",
    "NotYours": "a member changes only its own validators and writers",
}


@functools.cache
def governance_artifact() -> Artifact:
    return load_artifact("Governance")


@functools.cache
def _decoder() -> AbiRevertDecoder:
    make = functools.partial(ContractRevert, contract="governance")
    return AbiRevertDecoder(governance_artifact().abi, hints=HINTS, make=make)


def decode_revert(data: bytes) -> ContractRevert | None:
    """The governance refusal that revert `data` encodes, or None if it is not one."""
    return _decoder()(data)


def name_bytes(name: str) -> bytes:
    """A member name as the contract's bytes32 (the genesis's rule: 1 to 32 ASCII)."""
    try:
        return name_word(name).to_bytes(NAME_BYTES, "big")
    except InvalidGenesisSpec as e:
        raise ConfigError(
            f"{name!r} is not a member name", obj="name", hint="use 1 to 32 ASCII characters"
        ) from e


@dataclass(frozen=True)
class MemberView:
    admin: str
    name: str
    since: int  # block of admission; 0 for founders
    validators: tuple[str, ...]
    writers: tuple[str, ...]


@dataclass(frozen=True)
class ProposalView:
    id: int
    kind: str  # add | remove
    status: str  # open | approved | rejected | expired
    target: str
    name: str
    proposer: str
    expires: int  # last block in which a ballot counts
    approvals: tuple[str, ...]
    rejections: tuple[str, ...]


class Governance:
    """The Governance contract through the node at `rpc_url`; `admin_key` to write."""

    def __init__(
        self,
        rpc_url: str,
        *,
        admin_key: Secret | None = None,
        address: str = GOVERNANCE_ADDRESS,
        rpc_token: Secret | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.rpc_url = rpc_url
        self._w3 = http_web3(rpc_url, timeout=timeout, token=rpc_token)
        self._contract: Contract = self._w3.eth.contract(
            address=check_address("governance address", address), abi=governance_artifact().abi
        )
        self.address = self._contract.address
        self._sender: TxSender | None = (
            account_sender(self._w3, admin_key, url=rpc_url, decode_revert=decode_revert)
            if admin_key is not None
            else None
        )

    @property
    def account(self) -> str:
        """The admin account this client writes as."""
        return self._writer().address

    # -- reads --------------------------------------------------------------------------

    def members(self, *, block: int | None = None) -> list[MemberView]:
        """Every member, in one call (one state), at `block` (default: the head)."""
        at = block if block is not None else "latest"
        return [_member_view(*entry) for entry in self._read("memberList", block=at)]

    def member(self, admin: str, *, block: int | str = "latest") -> MemberView:
        checked = check_address("admin", admin)
        name, since, validators, writers = self._read("member", checked, block=block)
        return MemberView(checked, _name(name), int(since), tuple(validators), tuple(writers))

    def proposal_count(self, *, block: int | str = "latest") -> int:
        return int(self._read("proposalCount", block=block))

    def is_member(self, admin: str) -> bool:
        return bool(self._read("isMember", check_address("admin", admin)))

    def validators(self) -> list[str]:
        """The decided validator set: what Clique's signers should be."""
        return list(self._read("validators"))

    def threshold(self) -> int:
        return int(self._read("threshold"))

    def rules(self) -> dict[str, int]:
        return {
            "proposal_lifetime_blocks": int(self._read("proposalLifetime")),
            "validator_cap": int(self._read("validatorCap")),
            "validator_floor": int(self._read("validatorFloor")),
        }

    def proposal(self, proposal_id: int, *, block: int | None = None) -> ProposalView:
        """The proposal as of `block` (default: the head). An open proposal whose last
        block is the head reads "expired": a ballot sent now lands in a later block."""
        at = self._head() if block is None else block
        p, approvals, rejections = self._read("proposal", proposal_id, block=at)
        return _proposal_view(proposal_id, p, approvals, rejections, at)

    def proposals(self, *, open_only: bool = False, block: int | None = None) -> list[ProposalView]:
        """Every proposal (or the open ones), in one call, as of `block` (default: the
        head)."""
        at = self._head() if block is None else block
        entries = self._read("proposalList", 0, ALL, block=at)
        views = [_proposal_view(int(i), p, yes, no, at) for i, p, yes, no in entries]
        return [p for p in views if p.status == "open" or not open_only]

    # -- writes (signed with the admin key) ----------------------------------------------

    def propose_add(self, admin: str, name: str) -> PendingTx:
        """Propose `admin` as a member; a member's proposal counts as its approval."""
        args = [check_address("admin", admin), name_bytes(name)]
        return self._send("proposeAdd", args, f"proposal to add {name}")

    def propose_remove(self, admin: str) -> PendingTx:
        return self._send("proposeRemove", [check_address("admin", admin)], "proposal to remove")

    def vote(self, proposal_id: int, *, approve: bool) -> PendingTx:
        self._still_open(proposal_id)
        word = "approval" if approve else "rejection"
        return self._send("vote", [proposal_id, approve], f"{word} of proposal {proposal_id}")

    def withdraw_vote(self, proposal_id: int) -> PendingTx:
        self._still_open(proposal_id)
        return self._send("withdrawVote", [proposal_id], f"withdrawal from {proposal_id}")

    def settle(self, proposal_id: int) -> PendingTx:
        """Apply the rule to an open proposal after the membership changed."""
        self._still_open(proposal_id)
        return self._send("settle", [proposal_id], f"settlement of {proposal_id}")

    def add_validators(self, accounts: Sequence[str]) -> PendingTx:
        return self._send("addValidators", [_addresses(accounts)], "validators added")

    def remove_validators(self, accounts: Sequence[str]) -> PendingTx:
        return self._send("removeValidators", [_addresses(accounts)], "validators removed")

    def add_writers(self, accounts: Sequence[str]) -> PendingTx:
        return self._send("addWriters", [_addresses(accounts)], "writers added")

    def remove_writers(self, accounts: Sequence[str]) -> PendingTx:
        return self._send("removeWriters", [_addresses(accounts)], "writers removed")

    def fund(self, account: str, wei: int) -> PendingTx:
        """Send `wei` from this admin's account to `account`: a sponsoring member gives a
        joining bank's accounts the gas money for their first transactions."""
        to = check_address("account", account)
        return self._writer().send(to=to, data=b"", value=wei, what=f"gas money for {to}")

    # -- plumbing -------------------------------------------------------------------------

    def _writer(self) -> TxSender:
        if self._sender is None:
            raise ConfigError(
                "this governance client has no admin key",
                obj="governance",
                hint="pass the member's admin key to write",
            )
        return self._sender

    def _send(self, fn: str, args: Sequence[Any], what: str) -> PendingTx:
        sender = self._writer()
        data = bytes(HexBytes(self._contract.encode_abi(fn, args=list(args))))
        return sender.send(to=self.address, data=data, what=what)

    def _still_open(self, proposal_id: int) -> None:
        """Refuse here what the chain would refuse in the next block, spending nothing:
        `eth_estimateGas` runs at the head, a ballot lands at least one block later."""
        p = self.proposal(proposal_id)
        if p.status == "expired":
            raise ContractRevert(
                "ProposalExpired", {"id": proposal_id, "expiredAfter": p.expires},
                contract="governance", hint=HINTS["ProposalExpired"],
            )  # fmt: skip

    def _head(self) -> int:
        try:
            return int(self._w3.eth.block_number)
        except (requests.ConnectionError, requests.Timeout, OSError) as e:
            raise transport_error(e, self.rpc_url) from e

    def _read(self, fn: str, *args: Any, block: int | str = "latest") -> Any:
        """One call at `block`; a node that lacks that block yet (behind a balancer, a
        lagging one) gets `BLOCK_WAIT_SECONDS` to import it."""
        call = self._contract.get_function_by_name(fn)(*args)
        deadline = time.monotonic() + BLOCK_WAIT_SECONDS
        while True:
            try:
                return call.call(block_identifier=block)
            except (requests.ConnectionError, requests.Timeout, OSError) as e:
                raise transport_error(e, self.rpc_url) from e
            except ContractLogicError as e:
                raise revert_of(e, decode_revert) from e
            except Web3RPCError as e:
                if not any(m in str(e).lower() for m in UNKNOWN_BLOCK):
                    raise StateError(
                        f"the node refused to read the governance ({fn}): {e}",
                        obj=self.rpc_url,
                        hint="check the node's log; retry",
                    ) from e
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"the node has not imported block {block} after "
                        f"{BLOCK_WAIT_SECONDS:.0f}s, so it cannot read the governance there",
                        obj=self.rpc_url,
                        hint="a node behind the balancer lags: `poactl status` shows which; "
                        "retry in a moment",
                    ) from e
                time.sleep(0.5)


def _addresses(accounts: Sequence[str]) -> list[ChecksumAddress]:
    return [check_address(f"accounts[{i}]", a) for i, a in enumerate(accounts)]


def _name(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")


def _proposal_view(
    proposal_id: int, p: Any, approvals: Any, rejections: Any, at: int
) -> ProposalView:
    kind, status, expires, target, proposer, name = p
    shown = STATUSES[status]
    if shown == "open" and at >= int(expires):
        shown = "expired"
    return ProposalView(
        proposal_id, KINDS[kind], shown, target, _name(name), proposer,
        int(expires), tuple(approvals), tuple(rejections),
    )  # fmt: skip


def _member_view(admin: str, name: bytes, since: int, validators: Any, writers: Any) -> MemberView:
    checked = check_address("admin", admin)
    return MemberView(checked, _name(name), int(since), tuple(validators), tuple(writers))
