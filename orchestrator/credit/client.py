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
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import BlockIdentifier

from orchestrator.boundaries import Secret
from orchestrator.credit import codes
from orchestrator.credit.contract import registry_contract, sender_for
from orchestrator.credit.errors import InvalidRecord
from orchestrator.credit.pseudonym import check_secret, check_subject, pseudonym
from orchestrator.credit.records import (
    CONTRACT_TRADELINE_FIELDS,
    CreditFile,
    HistoryEntry,
    Record,
    Tradeline,
    account_ref_bytes,
    record_to_contract,
    summarize,
    tradeline_from_contract,
    validate_record,
)
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import PendingTx, TxSender, check_address

CHANGES = ("reported", "disputed", "resolved")  # the contract's Change enum, in order


READ_ATTEMPTS = 3  # a read at a block a reorg dropped is asked again


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
    ) -> None:
        """`rpc_token`: the application's token when `rpc_url` is its bank's balancer."""
        check_secret(pseudonym_secret)
        self._secret = pseudonym_secret
        self.rpc_url = rpc_url
        self._w3 = http_web3(rpc_url, timeout=timeout, token=rpc_token)
        self._sender = sender_for(self._w3, account_key, url=rpc_url)
        self._contract = registry_contract(self._w3, registry)
        self.registry: ChecksumAddress = self._contract.address

    def __repr__(self) -> str:
        return f"CreditClient({self.rpc_url}, bank={self.address}, registry={self.registry})"

    @property
    def address(self) -> str:
        """The bank's account: the furnisher of what this client reports."""
        return self._sender.address

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
        owner = self.address if furnisher is None else check_address("furnisher", furnisher)
        data = self._encode("report", [subject_bytes, owner, record_to_contract(record)])
        return self._send(data, gas, f"report of {record.account_ref}")

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
        owner = self.address if furnisher is None else check_address("furnisher", furnisher)
        args = [check_subject(subject), owner, account_ref_bytes(account_ref), code.encode()]
        return self._send(self._encode("resolve", args), gas, f"resolution of {account_ref}")

    # -- reads --------------------------------------------------------------------------

    def get(self, subject: bytes | str) -> CreditFile:
        """Every tradeline of `subject` across all banks, and their summary, at one block."""
        subject_bytes = check_subject(subject)
        for attempt in range(READ_ATTEMPTS):
            block = int(self._sender.rpc(lambda: self._w3.eth.block_number))
            try:
                raw = self._read("tradelinesOf", [subject_bytes], block)
                break
            except Web3RPCError as e:
                # A short Clique reorg can drop the block we just asked about ("header not
                # found"): ask again at the new head.
                if "header not found" not in str(e) or attempt == READ_ATTEMPTS - 1:
                    raise
        tradelines = tuple(tradeline_from_contract(subject_bytes, t) for t in raw)
        return CreditFile(
            subject=subject_bytes,
            block_number=block,
            tradelines=tradelines,
            summary=summarize(tradelines),
        )

    def tradeline(self, subject: bytes | str, furnisher: str, account_ref: str) -> Tradeline | None:
        """One tradeline, or None if that bank has none under that reference."""
        subject_bytes = check_subject(subject)
        args = [
            subject_bytes,
            check_address("furnisher", furnisher),
            account_ref_bytes(account_ref),
        ]
        raw = self._read("tradeline", args, "latest")
        if int(raw[CONTRACT_TRADELINE_FIELDS.index("version")]) == 0:
            return None
        return tradeline_from_contract(subject_bytes, raw)

    def history(
        self,
        subject: bytes | str,
        *,
        furnisher: str | None = None,
        account_ref: str | None = None,
        from_block: int = 0,
        to_block: BlockIdentifier = "latest",
    ) -> list[HistoryEntry]:
        """Every change of the subject's tradelines, oldest first, rebuilt from the logs.

        Narrow it to one bank (`furnisher`) and one account (`account_ref`).
        """
        subject_bytes = check_subject(subject)
        event = self._contract.events.TradelineChanged()
        topics: list[Any] = [
            HexBytes(event.topic).to_0x_hex(),
            "0x" + subject_bytes.hex(),
            None
            if furnisher is None
            else "0x" + bytes(12).hex() + check_address("furnisher", furnisher)[2:].lower(),
            None if account_ref is None else "0x" + account_ref_bytes(account_ref).hex(),
        ]
        logs = self._sender.rpc(
            lambda: self._w3.eth.get_logs(
                {
                    "address": self.registry,
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": topics,
                }
            )
        )
        entries = []
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            decoded = event.process_log(entry)
            args = decoded["args"]
            entries.append(
                HistoryEntry(
                    change=CHANGES[int(args["change"])],
                    by=str(args["by"]),
                    tradeline=tradeline_from_contract(subject_bytes, args["tradeline"]),
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
