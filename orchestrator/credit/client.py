"""`CreditClient`: one bank's view of the CreditRegistry through one RPC endpoint.

Writes (`report`, `dispute`, `resolve`) are validated on the client, signed locally with
the bank's account key and return a `PendingTx` whose `wait(confirmations=N)` gives the
`Inclusion`; who may write is the Governance contract's to say. Reads (`get`,
`tradeline`, `history`) come from the bank's read index when the client has one
(`index_url`) and it answers within `index_max_lag` blocks of the node's head, else from
the node the client is bound to: a bank reads from its own node. Every `Reported` log
read, from either, is checked against the commitment logged with it. Subjects are
pseudonyms: `client.subject(national_id)`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any, Literal

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier, RPCEndpoint

from orchestrator.boundaries import Secret
from orchestrator.credit import codes
from orchestrator.credit.access import BankAccess
from orchestrator.credit.contract import registry_contract, sender_for
from orchestrator.credit.errors import CreditError, InvalidRecord
from orchestrator.credit.indexed import IndexReader
from orchestrator.credit.pseudonym import check_secret, check_subject, pseudonym
from orchestrator.credit.records import (
    CreditFile,
    HistoryEntry,
    ReadFrom,
    Record,
    Tradeline,
    TradelineState,
    account_ref_bytes,
    checksummed,
    commitment,
    record_from_contract,
    record_to_contract,
    reported_fields,
    summarize,
    tradeline_at,
    validate_record,
)
from orchestrator.geth.client import http_web3
from orchestrator.geth.tx import PendingTx, TxSender, check_address

CHANGES = ("reported", "disputed", "resolved")  # the contract's Change enum, in order
INDEX_MAX_LAG = 2  # blocks an index answer may be behind the node's head before the node is read
MinBlock = int | Literal["head"] | None  # a read as of at least this block ("head": the node's now)


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
        index_url: str | None = None,
        index_max_lag: int = INDEX_MAX_LAG,
    ) -> None:
        """`rpc_token`: the application's token when `rpc_url` is its bank's balancer (the
        index gets it too); `from_block`: the registry's deployment block, where reading
        its logs starts; `index_url`: the bank's read index, read first."""
        check_secret(pseudonym_secret)
        self._secret = pseudonym_secret
        self.rpc_url = rpc_url
        self._w3 = http_web3(rpc_url, timeout=timeout, token=rpc_token)
        self._sender = sender_for(self._w3, account_key, url=rpc_url)
        self._contract = registry_contract(self._w3, registry)
        self.registry: ChecksumAddress = self._contract.address
        self.from_block = from_block
        self._furnisher: str | None = None
        events = self._contract.events
        self._reported = HexBytes(events.Reported().topic).to_0x_hex()
        self._dispute_changed = HexBytes(events.DisputeChanged().topic).to_0x_hex()
        self.index = None if index_url is None else IndexReader(index_url, token=rpc_token)
        self.index_max_lag = index_max_lag
        self._reads = threading.local()

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
            index_url=access.index_url,
        )

    def __repr__(self) -> str:
        return f"CreditClient({self.rpc_url}, bank={self.address}, registry={self.registry})"

    @property
    def last_read(self) -> ReadFrom | None:
        """Where this thread's last read (`get`, `tradeline`, `history`) came from and how
        far it was behind the node's head."""
        found: ReadFrom | None = getattr(self._reads, "last", None)
        return found

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
        today: dt.date | None = None,
    ) -> PendingTx:
        """Create or update this bank's tradeline for `subject`.

        `furnisher` defaults to this bank; naming another bank is refused by the contract
        (NotFurnisher): a bank writes only its own tradelines. `today` is the date the
        record's dates are checked against (default: the local date).
        """
        subject_bytes = check_subject(subject)
        validate_record(record, today=today)
        owner = self.furnisher if furnisher is None else check_address("furnisher", furnisher)
        args = [
            subject_bytes,
            owner,
            account_ref_bytes(record.account_ref),
            record_to_contract(record),
        ]
        return self._send(self._encode("report", args), gas, f"report of {record.account_ref}")

    def furnish(
        self,
        entries: Sequence[tuple[bytes, Record]],
        *,
        gas: int | None = None,
        today: dt.date | None = None,
    ) -> PendingTx:
        """Create or update many of this bank's tradelines in one transaction.

        A record identical to the one on chain is skipped by the contract, so sending a
        batch again writes nothing twice; one invalid or stale record reverts the batch.
        """
        data = self.furnish_data(entries, today=today)
        return self._send(data, gas, f"batch of {len(entries)} records")

    def furnish_data(
        self, entries: Sequence[tuple[bytes, Record]], *, today: dt.date | None = None
    ) -> bytes:
        """The calldata of `furnish(entries)`, each record validated (as of `today`)."""
        if not entries:
            raise InvalidRecord("entries", "[]", "at least one (subject, record)")
        packed = bytearray()
        for subject, record in entries:
            packed += check_subject(subject)
            packed += account_ref_bytes(validate_record(record, today=today).account_ref)
            packed += record_to_contract(record)
        return self._encode("furnish", [bytes(packed)])

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

    def get(self, subject: bytes | str, *, min_block: MinBlock = None) -> CreditFile:
        """Every tradeline of `subject` across all banks, and their summary, as of the
        block in `read`: from the bank's read index, else from the node (the head and the
        logs in one JSON-RPC batch, the logs read after the head).

        `min_block`: at least this block (the index waits a moment for it, else the node
        is read), e.g. the `Inclusion.block_number` of a write to read back; "head": at
        least the node's head now (one `eth_blockNumber` more), what `poactl credit get`
        asks. By default an index answer within `index_max_lag` blocks of the head will do.
        """
        subject_bytes = check_subject(subject)
        logs, read = self._subject_logs(subject_bytes, None, min_block)
        entries = self._fold(subject_bytes, logs, None)
        latest: dict[tuple[str, str], Tradeline] = {}
        for entry in entries:  # oldest first: a tradeline keeps its first place
            t = entry.tradeline
            latest[(t.furnisher, t.record.account_ref)] = t
        tradelines = tuple(latest.values())
        return CreditFile(
            subject=subject_bytes,
            block_number=read.block_number,
            tradelines=tradelines,
            summary=summarize(tradelines),
            read=read,
        )

    def tradeline(
        self,
        subject: bytes | str,
        furnisher: str,
        account_ref: str,
        *,
        min_block: MinBlock = None,
    ) -> Tradeline | None:
        """One tradeline, or None if that bank has none under that reference."""
        entries = self.history(
            subject, furnisher=furnisher, account_ref=account_ref, min_block=min_block
        )
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
        min_block: MinBlock = None,
    ) -> list[HistoryEntry]:
        """Every change of the subject's tradelines, oldest first, rebuilt from the logs:
        each entry's tradeline is as it stood after that change.

        Narrow it to one bank (`furnisher`) and one account (`account_ref`); `last_read`
        says where it was read.
        """
        subject_bytes = check_subject(subject)
        ref = None if account_ref is None else account_ref_bytes(account_ref)
        owner = None if furnisher is None else check_address("furnisher", furnisher)
        if to_block != "latest" or self.index is None:
            query = self._query(subject_bytes, owner, from_block, to_block)
            head, logs = self._raw_batch([("eth_blockNumber", []), ("eth_getLogs", [query])])
            block = int(head, 16)
            self._reads.last = ReadFrom("node", block, block)
            return self._fold(subject_bytes, logs, ref)
        logs, _ = self._subject_logs(subject_bytes, owner, min_block)
        start = self.from_block if from_block is None else from_block
        logs = [log for log in logs if int(log["blockNumber"], 16) >= start]
        return self._fold(subject_bytes, logs, ref)

    def is_member(self, bank: str) -> bool:
        """True while `bank` (an account) writes for a member: a writer in governance."""
        return bool(self._read("isMember", [check_address("bank", bank)], "latest"))

    def governance(self) -> str:
        """The Governance contract the registry asks who may write."""
        return str(self._read("governance", [], "latest"))

    # -- plumbing -----------------------------------------------------------------------

    def _subject_logs(
        self, subject: bytes, furnisher: str | None, at_least: MinBlock
    ) -> tuple[list[dict[str, Any]], ReadFrom]:
        """The subject's raw logs (one bank's, with `furnisher`) and where they came from:
        the index when it answers close enough to the node's head, else the node."""
        if at_least == "head":  # only an index can be behind the node's head
            min_block = None if self.index is None else int(self._raw("eth_blockNumber", []), 16)
        else:
            min_block = at_least
        if self.index is not None:
            answer = self.index.logs(subject, furnisher=furnisher, min_block=min_block)
            if answer is not None and answer.registry.lower() != self.registry.lower():
                self.index.unavailable(f"it holds registry {answer.registry}, not this one")
            elif answer is not None and (
                answer.read.behind <= self.index_max_lag
                and (min_block is None or answer.read.block_number >= min_block)
            ):
                self._reads.last = answer.read
                return answer.logs, answer.read
        query = self._query(subject, furnisher, None)
        head, logs = self._raw_batch([("eth_blockNumber", []), ("eth_getLogs", [query])])
        block = int(head, 16)
        if min_block is not None and block < min_block:
            raise CreditError(
                f"the node is at block {block}, below the {min_block} asked for",
                obj=self.rpc_url,
                hint="the node is catching up; read again in a moment",
            )
        read = ReadFrom("node", block, block)
        self._reads.last = read
        return logs, read

    def _query(
        self,
        subject: bytes,
        furnisher: str | None,
        from_block: int | None,
        to_block: BlockIdentifier = "latest",
    ) -> dict[str, Any]:
        """The eth_getLogs filter of a subject's changes (one bank's, with `furnisher`)."""
        owner = (
            None
            if furnisher is None
            else "0x" + bytes(12).hex() + check_address("furnisher", furnisher)[2:].lower()
        )
        start = self.from_block if from_block is None else from_block
        return {
            "address": self.registry,
            "fromBlock": hex(start),
            "toBlock": to_block if isinstance(to_block, str) else hex(int(to_block)),
            "topics": [[self._reported, self._dispute_changed], "0x" + subject.hex(), owner],
        }

    def _fold(
        self, subject: bytes, logs: list[dict[str, Any]], ref_filter: bytes | None
    ) -> list[HistoryEntry]:
        """History entries from raw logs, oldest first: each change's tradeline is the last
        report of it dressed with the state word after the change."""
        entries = []
        reported: dict[tuple[str, bytes], Record] = {}
        for log in sorted(logs, key=lambda e: (int(e["blockNumber"], 16), int(e["logIndex"], 16))):
            change, owner, ref, state, by, packed = self._decode(log)
            if ref_filter is not None and ref != ref_filter:
                continue
            if packed is not None:
                text = ref.rstrip(b"\0").decode("ascii", errors="replace")
                reported[(owner, ref)] = record_from_contract(text, packed)
            record = reported.get((owner, ref))
            if record is None:  # a dispute whose report is before `from_block`
                continue
            entries.append(
                HistoryEntry(
                    change=change,
                    by=by,
                    tradeline=tradeline_at(subject, owner, state, record),
                    block_number=int(log["blockNumber"], 16),
                    tx_hash=log["transactionHash"],
                    log_index=int(log["logIndex"], 16),
                )
            )
        return entries

    def _decode(
        self, log: dict[str, Any]
    ) -> tuple[str, str, bytes, TradelineState, str, bytes | None]:
        """(change, furnisher, account ref, state, by, packed record or None) of one raw log:
        `Reported` data is ref, state, head, body, tail (the 66-byte record as sent, checked
        against the state word's commitment); `DisputeChanged` has the ref as its third
        topic and state, change, by as data (see CreditRegistry.sol)."""
        topics = log["topics"]
        data = bytes.fromhex(log["data"][2:])
        owner = checksummed("0x" + topics[2][-40:])
        if topics[0] == self._reported:
            ref, word, packed = reported_fields(data)
            state = TradelineState.of(word)
            if commitment(packed) != state.commitment:
                raise CreditError(
                    "a Reported log's record does not match the commitment logged with it",
                    obj=f"block {int(log['blockNumber'], 16)} log {int(log['logIndex'], 16)}",
                    hint="the node answered with a log the registry did not write; "
                    "read from another node of your bank and report this one",
                )
            return "reported", owner, ref, state, owner, packed
        state = TradelineState.of(int.from_bytes(data[:32], "big"))
        change = CHANGES[int.from_bytes(data[32:64], "big")]
        by = checksummed("0x" + data[76:96].hex())
        return change, owner, bytes.fromhex(topics[3][2:]), state, by, None

    def _raw_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several JSON-RPC calls in one HTTP request (one node), their results in order."""
        requests = [(RPCEndpoint(method), params) for method, params in calls]
        answers = self._sender.rpc(lambda: self._w3.provider.make_batch_request(requests))  # type: ignore[attr-defined]
        if not isinstance(answers, list):
            answers = [answers]
        by_id = sorted(answers, key=lambda a: int(a.get("id", 0)))
        return [
            self._result(method, answer) for (method, _), answer in zip(calls, by_id, strict=True)
        ]

    def _raw(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call without web3's formatters (reads of many logs stay fast)."""
        answer = self._sender.rpc(lambda: self._w3.provider.make_request(method, params))  # type: ignore[arg-type]
        return self._result(method, answer)

    def _result(self, method: str, answer: Any) -> Any:
        if "error" in answer:
            raise CreditError(
                f"{method} failed: {answer['error'].get('message', answer['error'])}",
                obj=self.rpc_url,
                hint="if the node was catching up or a block was replaced, read again",
            )
        return answer["result"]

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
