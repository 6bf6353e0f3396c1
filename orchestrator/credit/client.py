"""`CreditClient`: one bank's view of the CreditRegistry through one RPC endpoint.

Writes (`report`, `dispute`, `resolve`) are validated on the client, signed locally with
the bank's account key and return a `PendingTx` whose `wait(confirmations=N)` gives the
`Inclusion`; who may write is the Governance contract's to say. Reads (`get`,
`tradeline`, `history`, `is_member`) come from the node the client is bound to: a bank
reads from its own node. Subjects are pseudonyms: `client.subject(national_id)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier

from orchestrator.boundaries import Secret
from orchestrator.credit import codes
from orchestrator.credit.access import BankAccess
from orchestrator.credit.contract import registry_contract, sender_for
from orchestrator.credit.errors import InvalidRecord
from orchestrator.credit.pseudonym import check_secret, check_subject, pseudonym
from orchestrator.credit.records import (
    CreditFile,
    HistoryEntry,
    Record,
    Tradeline,
    TradelineState,
    account_ref_bytes,
    record_from_contract,
    record_to_contract,
    summarize,
    tradeline_at,
    validate_record,
)
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import PendingTx, TxSender, check_address

CHANGES = ("reported", "disputed", "resolved")  # the contract's Change enum, in order


class CreditClient:
    """A bank's client: its account key signs, its pseudonym secret hashes subjects.

    Thread-safe: many threads may write through one client; nonces are allocated locally.
    """

    def __init__(
        self,
        rpc_url: str,
        *,
        registry: str,
        account_key: Secret,
        pseudonym_secret: Secret,
        timeout: float = 10.0,
        rpc_token: Secret | None = None,
        from_block: int = 0,
    ) -> None:
        """`rpc_token`: the application's token when `rpc_url` is its bank's balancer;
        `from_block`: the registry's deployment block, where reading its logs starts."""
        check_secret(pseudonym_secret)
        self._secret = pseudonym_secret
        self.rpc_url = rpc_url
        self._w3 = http_web3(rpc_url, timeout=timeout, token=rpc_token)
        self._sender = sender_for(self._w3, account_key, url=rpc_url)
        self._contract = registry_contract(self._w3, registry)
        self.registry: ChecksumAddress = self._contract.address
        self.from_block = from_block
        self._furnisher: str | None = None

    @classmethod
    def of(cls, access: BankAccess, *, timeout: float = 10.0) -> CreditClient:
        """The client a resolver's `BankAccess` describes."""
        return cls(
            access.rpc_url,
            registry=access.registry,
            account_key=access.account_key,
            pseudonym_secret=access.pseudonym_secret,
            timeout=timeout,
            rpc_token=access.rpc_token,
            from_block=access.registry_block,
        )

    def __repr__(self) -> str:
        return f"CreditClient({self.rpc_url}, bank={self.address}, registry={self.registry})"

    @property
    def address(self) -> str:
        """The account that signs this client's transactions (one of its bank's writers)."""
        return self._sender.address

    @property
    def furnisher(self) -> str:
        """The bank this client writes for: its admin account in Governance (the zero
        address while the account is no member's writer, asked again next time)."""
        if self._furnisher is None:
            found = str(self._read("furnisherOf", [self.address], "latest"))
            if int(found, 16) == 0:
                return found
            self._furnisher = found
        return self._furnisher

    @property
    def sender(self) -> TxSender:
        """The TxSender (nonces, fees) behind this client's writes."""
        return self._sender

    def subject(self, national_id: str) -> bytes:
        """The pseudonym of `national_id` under the consortium secret (computed here)."""
        return pseudonym(self._secret, national_id)

    # -- writes -------------------------------------------------------------------------

    def report(
        self,
        subject: bytes | str,
        record: Record,
        *,
        furnisher: str | None = None,
        gas: int | None = None,
    ) -> PendingTx:
        """Create or update this bank's tradeline for `subject`.

        `furnisher` defaults to this bank; naming another bank is refused by the contract
        (NotFurnisher): a bank writes only its own tradelines.
        """
        subject_bytes = check_subject(subject)
        validate_record(record)
        owner = self.furnisher if furnisher is None else check_address("furnisher", furnisher)
        args = [
            subject_bytes,
            owner,
            account_ref_bytes(record.account_ref),
            record_to_contract(record),
        ]
        return self._send(self._encode("report", args), gas, f"report of {record.account_ref}")

    def furnish(
        self, entries: Sequence[tuple[bytes, Record]], *, gas: int | None = None
    ) -> PendingTx:
        """Create or update many of this bank's tradelines in one transaction.

        A record identical to the one on chain is skipped by the contract, so sending a
        batch again writes nothing twice; one invalid or stale record reverts the batch.
        """
        if not entries:
            raise InvalidRecord("entries", "[]", "at least one (subject, record)")
        packed = bytearray()
        for subject, record in entries:
            packed += check_subject(subject)
            packed += account_ref_bytes(validate_record(record).account_ref)
            packed += record_to_contract(record)
        data = self._encode("furnish", [bytes(packed)])
        return self._send(data, gas, f"batch of {len(entries)} records")

    def dispute(
        self,
        subject: bytes | str,
        furnisher: str,
        account_ref: str,
        code: str = "XB",
        *,
        gas: int | None = None,
    ) -> PendingTx:
        """Flag a consumer's dispute on any member's tradeline (XB, XD, XF or XJ)."""
        if code not in codes.DISPUTE_OPEN:
            raise InvalidRecord("code", code, f"one of {', '.join(sorted(codes.DISPUTE_OPEN))}")
        args = [
            check_subject(subject),
            check_address("furnisher", furnisher),
            account_ref_bytes(account_ref),
            code.encode(),
        ]
        return self._send(self._encode("dispute", args), gas, f"dispute of {account_ref}")

    def resolve(
        self,
        subject: bytes | str,
        account_ref: str,
        code: str = "XH",
        *,
        furnisher: str | None = None,
        gas: int | None = None,
    ) -> PendingTx:
        """Close the open dispute on this bank's tradeline (XC, XE, XG, XH; XR removes it)."""
        if code not in codes.DISPUTE_RESOLVE:
            allowed = ", ".join(sorted(codes.DISPUTE_RESOLVE))
            raise InvalidRecord("code", code, f"one of {allowed}")
        owner = self.furnisher if furnisher is None else check_address("furnisher", furnisher)
        args = [check_subject(subject), owner, account_ref_bytes(account_ref), code.encode()]
        return self._send(self._encode("resolve", args), gas, f"resolution of {account_ref}")

    # -- reads --------------------------------------------------------------------------

    def get(self, subject: bytes | str) -> CreditFile:
        """Every tradeline of `subject` across all banks, and their summary, at one block."""
        subject_bytes = check_subject(subject)
        block = int(self._sender.rpc(lambda: self._w3.eth.block_number))
        entries = self.history(subject_bytes, to_block=block)
        latest: dict[tuple[str, str], Tradeline] = {}
        for entry in entries:  # oldest first: a tradeline keeps its first place
            t = entry.tradeline
            latest[(t.furnisher, t.record.account_ref)] = t
        tradelines = tuple(latest.values())
        return CreditFile(
            subject=subject_bytes,
            block_number=block,
            tradelines=tradelines,
            summary=summarize(tradelines),
        )

    def tradeline(self, subject: bytes | str, furnisher: str, account_ref: str) -> Tradeline | None:
        """One tradeline, or None if that bank has none under that reference."""
        entries = self.history(subject, furnisher=furnisher, account_ref=account_ref)
        return entries[-1].tradeline if entries else None

    def states(self, keys: Sequence[bytes]) -> list[TradelineState]:
        """The contract's state of each tradeline key (`records.tradeline_key`)."""
        words = self._read("states", [list(keys)], "latest")
        return [TradelineState.of(int(w)) for w in words]

    def history(
        self,
        subject: bytes | str,
        *,
        furnisher: str | None = None,
        account_ref: str | None = None,
        from_block: int | None = None,
        to_block: BlockIdentifier = "latest",
    ) -> list[HistoryEntry]:
        """Every change of the subject's tradelines, oldest first, rebuilt from the logs:
        each entry's tradeline is as it stood after that change.

        Narrow it to one bank (`furnisher`) and one account (`account_ref`).
        """
        subject_bytes = check_subject(subject)
        events = self._contract.events
        kinds = {HexBytes(e.topic): e for e in (events.Reported(), events.DisputeChanged())}
        topics: list[Any] = [
            [t.to_0x_hex() for t in kinds],
            "0x" + subject_bytes.hex(),
            None
            if furnisher is None
            else "0x" + bytes(12).hex() + check_address("furnisher", furnisher)[2:].lower(),
            None if account_ref is None else "0x" + account_ref_bytes(account_ref).hex(),
        ]
        query = {
            "address": self.registry,
            "fromBlock": self.from_block if from_block is None else from_block,
            "toBlock": to_block,
            "topics": topics,
        }
        logs = self._sender.rpc(lambda: self._w3.eth.get_logs(query))  # type: ignore[arg-type]
        entries = []
        reported: dict[tuple[str, bytes], Record] = {}
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            args = kinds[HexBytes(entry["topics"][0])].process_log(entry)["args"]
            owner, ref = str(args["furnisher"]), bytes(args["accountRef"])
            if "head" in args:  # Reported; the compliance condition comes from the state
                packed = bytes(args["head"]) + bytes(args["body"]) + bytes(2)
                reported[(owner, ref)] = record_from_contract(
                    ref.rstrip(b"\0").decode("ascii"), packed
                )
                change, by = "reported", owner
            else:
                change, by = CHANGES[int(args["change"])], str(args["by"])
            record = reported.get((owner, ref))
            if record is None:  # a dispute whose report is before `from_block`
                continue
            entries.append(
                HistoryEntry(
                    change=change,
                    by=by,
                    tradeline=tradeline_at(
                        subject_bytes, owner, TradelineState.of(int(args["state"])), record
                    ),
                    block_number=int(entry["blockNumber"]),
                    tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
                    log_index=int(entry["logIndex"]),
                )
            )
        return entries

    def is_member(self, bank: str) -> bool:
        """True while `bank` (an account) writes for a member: a writer in governance."""
        return bool(self._read("isMember", [check_address("bank", bank)], "latest"))

    def governance(self) -> str:
        """The Governance contract the registry asks who may write."""
        return str(self._read("governance", [], "latest"))

    # -- plumbing -----------------------------------------------------------------------

    def _encode(self, fn: str, args: Sequence[Any]) -> bytes:
        return bytes(HexBytes(self._contract.encode_abi(fn, args=list(args))))

    def _send(self, data: bytes, gas: int | None, what: str) -> PendingTx:
        return self._sender.send(to=self.registry, data=data, gas=gas, what=what)

    def _read(self, fn: str, args: Sequence[Any], block: BlockIdentifier) -> Any:
        function = self._contract.get_function_by_name(fn)(*args)
        try:
            return self._sender.rpc(lambda: function.call(block_identifier=block))
        except ContractLogicError as e:
            raise self._sender.revert_error(e) from e
