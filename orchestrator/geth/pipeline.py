"""Many transactions of one account in flight at once: signed here with consecutive
nonces, sent as JSON-RPC batches, followed until each is in a block.

Why batches: a bank's balancer spreads requests round robin over the bank's nodes. Sent one
request each, consecutive nonces of one account land on different nodes, and a node keeps
a transaction whose predecessor it has not seen (a nonce gap) to itself until the
predecessor arrives. geth sends transactions over 4 KB to its peers only as announcements,
which a peer fetches after half a second (`eth/fetcher/tx_fetcher.go`, `txArriveTimeout`),
so each link of the nonce chain cost half a second: about two furnish transactions a
second reached the sealers, whatever the chain could take. One batch request carries a run
of consecutive nonces to one node, which passes them on together.

Following: one loop asks the head (`eth_blockNumber`); when it moves, the receipts of what
is outstanding are read raw, in batch requests, without web3's result formatters (a furnish
receipt carries a log per record; formatting them cost more CPU than everything else the
client did). Only `status`, `blockNumber` and `gasUsed` are read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import requests
from web3.types import RPCEndpoint

from orchestrator.errors import ServiceUnavailable, TransactionError, WaitTimeout
from orchestrator.geth.tx import (
    ALREADY_KNOWN,
    NONCE_ERRORS,
    SEND_ATTEMPTS,
    SignedTx,
    TxSender,
    transport_error,
)
from orchestrator.retry import retry_transient

T = TypeVar("T")
_Signed = tuple[SignedTx, tuple[bytes, int, T, str]]  # a signed transaction and its item

MAX_REQUESTS = 100  # a balancer passes batches of at most 100 requests (balancer/jsonrpc.py)
MAX_BODY_BYTES = 512 * 1024  # a batch request's body; the balancer's default cap is 1 MiB
RECEIPT_CHECK_SECONDS = 1.0  # read receipts at least this often, even if the head seems still


@dataclass
class Timings:
    """Where a pipeline's time went, in seconds: signing, sending (the requests), and
    following (waiting for the head to move and reading receipts)."""

    signing: float = 0.0
    sending: float = 0.0
    following: float = 0.0


@dataclass
class Flight(Generic[T]):
    """A transaction sent and not yet seen in a block."""

    signed: SignedTx
    gas: int
    tag: T
    what: str
    sent_at: float


@dataclass(frozen=True)
class Landed(Generic[T]):
    """A transaction in a block (as one node of the bank saw it)."""

    tag: T
    tx_hash: str
    block_number: int
    gas_used: int


@dataclass
class TxPipeline(Generic[T]):
    """One account's transactions to one endpoint, many in flight; not thread-safe.

    `send` signs a run of transactions with the next nonces and sends them in as few
    requests as the balancer allows; `landed` waits a little and returns what is in a
    block since the last call. A transaction that reverted raises (the contract's reason,
    replayed); one that is not in a block `timeout` seconds after it was sent raises
    WaitTimeout.
    """

    sender: TxSender
    timeout: float = 120.0
    poll: float = 0.2
    retry_seconds: float = 60.0  # a request that gets no answer is sent again this long
    timings: Timings = field(default_factory=Timings)
    _flights: dict[str, Flight[T]] = field(default_factory=dict)  # by hash, in nonce order
    _head: int = -1
    _checked: float = 0.0

    @property
    def outstanding(self) -> int:
        return len(self._flights)

    @property
    def gas_in_flight(self) -> int:
        return sum(f.gas for f in self._flights.values())

    def block_gas_limit(self) -> int:
        """The gas limit of the latest block (what one block can take)."""
        (block,) = self._call([("eth_getBlockByNumber", ["latest", False])])
        return int(block["gasLimit"], 16)

    def send(self, to: str, items: Sequence[tuple[bytes, int, T, str]]) -> list[str]:
        """Sign (data, gas limit, tag, what) items with consecutive nonces and send them;
        their transaction hashes."""
        started = time.monotonic()
        signed = [
            (self.sender.sign(self.sender.call_of(to=to, data=item[0]), gas=item[1], nonce=n), item)
            for item, n in zip(items, self._nonces(len(items)), strict=True)
        ]
        self.timings.signing += time.monotonic() - started
        hashes: dict[int, str] = {}  # item's place -> its transaction's hash
        places = {id(item): i for i, item in enumerate(items)}
        for attempt in range(1, SEND_ATTEMPTS + 1):
            started = time.monotonic()
            accepted, refused = self._send_signed(signed)
            self.timings.sending += time.monotonic() - started
            hashes.update((places[id(item)], s.tx_hash) for s, item in accepted)
            if not refused:
                return [hashes[i] for i in range(len(items))]
            # A nonce someone else took (another process writing from this account, or
            # what a killed run left in the pools): ask the node again and sign anew.
            self.sender.nonces.resync()
            fresh = self._nonces(len(refused))
            signed = [
                (self.sender.sign(s.call, gas=item[1], nonce=n), item)
                for (s, item), n in zip(refused, fresh, strict=True)
            ]
            if attempt == SEND_ATTEMPTS:
                break
        raise TransactionError(
            f"no free nonce after {SEND_ATTEMPTS} attempts",
            obj=self.sender.address,
            hint="another process may be sending from the same account; give each writer "
            "its own account, or retry",
        )

    def landed(
        self, on_failure: Callable[[T, TransactionError], TransactionError], *, wait: bool = True
    ) -> list[Landed[T]]:
        """What is in a block since the last call (oldest first), after waiting one poll
        interval (unless `wait` is false: the caller had other work meanwhile).

        A reverted transaction raises `on_failure(tag, the replayed reason)`."""
        if not self._flights:
            return []
        started = time.monotonic()
        try:
            if wait:
                time.sleep(self.poll)
            head = int(self._call([("eth_blockNumber", [])])[0], 16)
            now = time.monotonic()
            if head == self._head and now - self._checked < RECEIPT_CHECK_SECONDS:
                self._check_timeouts(now)
                return []
            self._head, self._checked = head, now
            found = self._receipts()
            self._check_timeouts(time.monotonic())
        finally:
            self.timings.following += time.monotonic() - started
        landed = []
        for tx_hash, receipt in found:
            flight = self._flights.pop(tx_hash)
            if int(receipt["status"], 16) != 1:
                plain = {
                    "blockNumber": int(receipt["blockNumber"], 16),
                    "gasUsed": int(receipt["gasUsed"], 16),
                }
                raise on_failure(
                    flight.tag, self.sender.explain_failure(flight.signed.call, plain, tx_hash)
                )
            landed.append(
                Landed(
                    flight.tag,
                    tx_hash,
                    int(receipt["blockNumber"], 16),
                    int(receipt["gasUsed"], 16),
                )
            )
        return landed

    # -- plumbing ------------------------------------------------------------------------

    def _nonces(self, count: int) -> list[int]:
        return [self.sender.nonces.allocate() for _ in range(count)]

    def _send_signed(self, signed: list[_Signed[T]]) -> tuple[list[_Signed[T]], list[_Signed[T]]]:
        """Send in batch requests; (what the node took, what it refused for its nonce)."""
        accepted, refused = [], []
        for part in _parts(signed, lambda s: 2 * len(s[0].raw) + 80):
            calls = [("eth_sendRawTransaction", ["0x" + s.raw.hex()]) for s, _ in part]
            answers = self._batch(calls)
            now = time.monotonic()
            for (s, item), answer in zip(part, answers, strict=True):
                error = answer.get("error")
                message = str(error.get("message", error)).lower() if error else ""
                if error and ALREADY_KNOWN not in message:
                    if any(m in message for m in NONCE_ERRORS):
                        refused.append((s, item))
                        continue
                    _, _, _, what = item
                    raise TransactionError(
                        f"the node refused the {what}: {error.get('message', error)}",
                        obj=self.sender.address,
                        hint="check the account's balance and the node's log; "
                        "transactions sent before it may still land",
                    )
                _, gas, tag, what = item
                self._flights[s.tx_hash] = Flight(s, gas, tag, what, now)
                accepted.append((s, item))
        return accepted, refused

    def _receipts(self) -> list[tuple[str, dict[str, Any]]]:
        """(hash, raw receipt) of every outstanding transaction that is in a block."""
        hashes = list(self._flights)
        found = []
        for part in _parts(hashes, lambda _h: 100):
            answers = self._batch([("eth_getTransactionReceipt", [h]) for h in part])
            for tx_hash, answer in zip(part, answers, strict=True):
                receipt = answer.get("result")
                if isinstance(receipt, dict) and receipt.get("blockNumber"):
                    found.append((tx_hash, receipt))
        return found

    def _check_timeouts(self, now: float) -> None:
        for flight in self._flights.values():
            if now - flight.sent_at > self.timeout:
                raise WaitTimeout(
                    f"{flight.what} was not included",
                    elapsed=now - flight.sent_at,
                    last_state=f"sent with nonce {flight.signed.nonce}, head {self._head}, "
                    f"{len(self._flights)} transactions outstanding",
                    obj=flight.signed.tx_hash,
                    hint="check that the validators are sealing (`poactl status`) and that "
                    "the account has funds for gas",
                )

    def _call(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        answers = self._batch(calls)
        for (method, _), answer in zip(calls, answers, strict=True):
            if "error" in answer:
                raise ServiceUnavailable(
                    f"{method} failed: {answer['error'].get('message', answer['error'])}",
                    obj=self.sender.url,
                    hint="check the node (or the bank's balancer) and try again",
                )
        return [a["result"] for a in answers]

    def _batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """One batch request, its answers in the order of `calls`. Every request here may be
        sent again (reads, and raw transactions already signed: a second copy is "already
        known"), so one that gets no answer is retried for up to `retry_seconds`."""
        requests_ = [(RPCEndpoint(method), params) for method, params in calls]
        provider = self.sender.w3.provider

        def ask() -> Any:
            try:
                return provider.make_batch_request(requests_)  # type: ignore[attr-defined]
            except (requests.ConnectionError, requests.Timeout, OSError) as e:
                raise transport_error(e, self.sender.url) from e

        what = f"a batch of {len(calls)} {calls[0][0]}" if calls else "a batch"
        try:
            answers = retry_transient(ask, what=what, timeout=self.retry_seconds)
        except ServiceUnavailable:
            self.sender.nonces.invalidate()  # whether the node took what we sent is unknown
            raise
        if not isinstance(answers, list):  # the whole batch refused: one error object
            error = answers.get("error", answers) if isinstance(answers, dict) else answers
            raise ServiceUnavailable(
                f"the node refused a batch of {len(calls)} requests: {error}",
                obj=self.sender.url,
                hint="check the node's or the balancer's batch and body limits",
            )
        if len(answers) != len(calls):
            raise ServiceUnavailable(
                f"{len(answers)} answers to a batch of {len(calls)} requests",
                obj=self.sender.url,
                hint="check the node (or the bank's balancer) and try again",
            )
        return list(answers)  # web3 numbers a batch's requests in order and sorts by id


def _parts(items: Sequence[Any], size: Callable[[Any], int]) -> Iterator[Sequence[Any]]:
    """`items` in runs of at most MAX_REQUESTS and MAX_BODY_BYTES (at least one each)."""
    start, total = 0, 0
    for i, item in enumerate(items):
        n = size(item)
        if i > start and (i - start >= MAX_REQUESTS or total + n > MAX_BODY_BYTES):
            yield items[start:i]
            start, total = i, 0
        total += n
    if start < len(items):
        yield items[start:]
