"""A steady write load through each bank's balancer, recording what clients were told.

One client per bank runs in the bank's application host (its thread enters the host's
network namespace, so every socket it opens is there) and talks to the bank's balancer
with the bank's application token, as a bank's application does. It signs transactions
with the bank's transaction key (a 0-value transfer to itself: a write whose inclusion
is the whole point) and sends them with `eth_sendRawTransaction`, at `rate` per second,
at most `window` unconfirmed at a time. It resends a transaction it has no receipt for
after `RESEND` seconds (a node that died may have taken it along), asks for receipts,
and *acknowledges* a write once its receipt's block is `confirmations` blocks deep as
the balancer shows it: that acknowledgement (hash, block, block hash, head) is what the
application was told, and what the checker holds the final chain to.

Every request that fails (no answer, an HTTP error, a JSON-RPC error other than "already
known" for a resend) is recorded with its time, method and error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_account import Account

from orchestrator.lab import netns

RESEND = 6.0
TIMEOUT = 5.0
GAS_PRICE = 2 * 10**9
BENIGN = ("already known", "nonce too low", "replacement transaction underpriced")


@dataclass(frozen=True)
class Ack:
    bank: str
    tx: str
    nonce: int
    block: int
    block_hash: str
    head: int  # the head the client saw when it acknowledged
    t: float  # monotonic
    sent: float  # when it was first sent
    included: float  # when the client first saw its receipt


@dataclass(frozen=True)
class Failure:
    bank: str
    t: float  # when the request was sent (monotonic)
    method: str
    error: str


@dataclass
class _Pending:
    nonce: int
    raw: str
    tx: str
    sent: float  # last (re)sent
    first_sent: float
    included: float | None = None


@dataclass
class Client:
    bank: str
    ns: str
    url: str
    token: str
    key: str
    chain_id: int
    rate: float = 2.0
    window: int = 8
    confirmations: int = 3
    acks: list[Ack] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self._account = Account.from_key(self.key)
        self._stop = threading.Event()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"load-{self.bank}")
        self._session = requests.Session()
        self._next_nonce: int | None = None

    def start(self) -> Client:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def unconfirmed(self) -> int:
        with self._lock:
            return len(self._pending)

    def _rpc(self, method: str, params: list[Any], *, benign: tuple[str, ...] = ()) -> Any:
        t0 = time.monotonic()
        try:
            answer = self._session.post(
                self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                headers={"Authorization": f"Bearer {self.token}"}, timeout=TIMEOUT,
            )  # fmt: skip
            answer.raise_for_status()
            doc = answer.json()
        except (requests.RequestException, ValueError) as e:
            self._fail(t0, method, f"{type(e).__name__}: {e}")
            return None
        if "error" in doc:
            message = str(doc["error"].get("message", doc["error"]))
            if not any(b in message for b in benign):
                self._fail(t0, method, message)
            return None
        return doc.get("result")

    def _fail(self, t0: float, method: str, error: str) -> None:
        with self._lock:
            self.failures.append(Failure(self.bank, t0, method, error[:200]))

    def _run(self) -> None:
        with netns.inside(self.ns):
            self._session = requests.Session()  # its sockets are made in the bank's host
            interval = 1.0 / self.rate
            next_send = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_send and self.unconfirmed < self.window:
                    self._send_new()
                    next_send = now + interval
                self._confirm()
                self._stop.wait(min(interval, 0.5))
            self._session.close()

    def _send_new(self) -> None:
        if self._next_nonce is None:
            count = self._rpc("eth_getTransactionCount", [self._account.address, "pending"])
            if count is None:
                return
            self._next_nonce = int(count, 16)
        nonce = self._next_nonce
        tx = {"nonce": nonce, "to": self._account.address, "value": 0, "gas": 21000,
              "gasPrice": GAS_PRICE, "chainId": self.chain_id}  # fmt: skip
        signed = self._account.sign_transaction(tx)
        raw = "0x" + bytes(signed.raw_transaction).hex()
        tx_hash = "0x" + bytes(signed.hash).hex()
        with self._lock:
            now = time.monotonic()
            self._pending[tx_hash] = _Pending(nonce, raw, tx_hash, now, now)
        self._next_nonce = nonce + 1
        self.sent += 1
        self._rpc("eth_sendRawTransaction", [raw], benign=BENIGN)

    def _confirm(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        if not pending:
            return
        head_hex = self._rpc("eth_blockNumber", [])
        if head_hex is None:
            return
        head = int(head_hex, 16)
        now = time.monotonic()
        for p in sorted(pending, key=lambda p: p.nonce)[:4]:  # oldest first, a few a round
            receipt = self._rpc("eth_getTransactionReceipt", [p.tx])
            if receipt is None:
                if now - p.sent > RESEND:
                    p.sent = now
                    self._rpc("eth_sendRawTransaction", [p.raw], benign=BENIGN)
                continue
            block = int(receipt["blockNumber"], 16)
            p.included = p.included or now
            if head - block >= self.confirmations:
                ack = Ack(
                    self.bank, p.tx, p.nonce, block, receipt["blockHash"], head, now,
                    p.first_sent, p.included,
                )  # fmt: skip
                with self._lock:
                    self.acks.append(ack)
                    self._pending.pop(p.tx, None)


@dataclass
class Load:
    """Clients for several banks, started and stopped together."""

    clients: list[Client]

    def start(self) -> Load:
        for c in self.clients:
            c.start()
        return self

    def stop(self) -> None:
        for c in self.clients:
            c.stop()

    @property
    def acks(self) -> list[Ack]:
        return [a for c in self.clients for a in c.acks]

    @property
    def failures(self) -> list[Failure]:
        return [f for c in self.clients for f in c.failures]

    def failures_since(self, t: float, until: float | None = None) -> list[Failure]:
        return [f for f in self.failures if f.t >= t and (until is None or f.t <= until)]
