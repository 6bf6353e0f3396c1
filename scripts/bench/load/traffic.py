"""What talks to the nodes during a step: the open-loop senders (and resending through a
bank's other nodes), the block observers, the RSS and CPU sampler, and the reader, which
runs in its own process."""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing as mp
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import psutil
import requests

from orchestrator.credit.access import BankAccess
from orchestrator.credit.client import CreditClient
from orchestrator.credit.contract import registry_contract
from orchestrator.geth.client import http_web3

from .signing import Batch

POLL_S = 0.05  # block observers poll each node's head this often
TICK_S = 0.005  # the sender sends what is due at least this often
MAX_BATCH = 500  # geth's --rpc.batch-request-limit is 1000
MAX_BODY = 4 * 2**20  # geth refuses a request body over 5 MiB (a batch transaction is ~26 kB)
READ_RATE = 20.0  # reads per second in the reader process


def chunk_end(items: Sequence[str], i: int, j: int) -> int:
    """The end of the request starting at item i: at most j, MAX_BATCH items and MAX_BODY
    bytes (but at least one item)."""
    end, size = i, 0
    for end in range(i, min(j, i + MAX_BATCH)):
        size += len(items[end]) + 1
        if size > MAX_BODY and end > i:
            return end
    return end + 1


def resend(missing: Sequence[tuple[Batch, int]]) -> int:
    """Send `missing` transactions (by batch, index) again through each bank's other nodes."""
    headers = {"Content-Type": "application/json"}
    for b in {id(b): b for b, _ in missing}.values():
        items = [b.items[k] for bb, k in missing if bb is b]
        i = 0
        while i < len(items):
            j = chunk_end(items, i, len(items))
            body = "[" + ",".join(items[i:j]) + "]"
            i = j
            for url in b.lane.others:
                with contextlib.suppress(requests.RequestException):
                    requests.post(url, data=body, headers=headers, timeout=30)
    return len(missing)


def send_lane(batch: Batch, t0: float) -> None:
    """Open loop: every TICK_S, send everything that is due in one batch request."""
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    offsets, n, i = batch.offsets, len(batch.items), 0
    while i < n:
        now = time.monotonic() - t0
        due = bisect.bisect_right(offsets, now, lo=i)
        if due == i:
            time.sleep(min(TICK_S, offsets[i] - now))
            continue
        j = chunk_end(batch.items, i, due)
        body = "[" + ",".join(batch.items[i:j]) + "]"
        sent = time.monotonic()
        batch.max_lag = max(batch.max_lag, sent - t0 - offsets[i])
        try:
            answer = session.post(batch.lane.url, data=body, headers=headers, timeout=30).json()
        except (requests.RequestException, ValueError) as e:
            batch.errors[f"transport: {type(e).__name__}"] += j - i
            batch.failed.update(range(i, j))
            i = j
            continue
        for k in range(i, j):
            batch.sent_at[k] = sent
        for item in answer if isinstance(answer, list) else []:
            if "error" in item:
                batch.errors[str(item["error"].get("message"))[:80]] += 1
                batch.failed.add(int(item["id"]))
        i = j


# -- watching blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class BlockSeen:
    number: int
    seen: float  # monotonic
    timestamp: int
    txs: int
    gas_used: int
    gas_limit: int
    base_fee: int


class Observer(threading.Thread):
    """Polls one node's head; records when each transaction first shows up in a block."""

    def __init__(self, node: str, url: str) -> None:
        super().__init__(daemon=True, name=f"observer-{node}")
        self.node, self.url = node, url
        self.session = requests.Session()
        self.seen: dict[str, float] = {}
        self.blocks: dict[int, BlockSeen] = {}
        self.hashes: dict[int, str] = {}
        self.reorgs = 0
        self.stop = threading.Event()
        self.head = self._call("eth_blockNumber", [])
        self.head = int(self.head, 16)

    def _call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return self.session.post(self.url, json=body, timeout=10).json().get("result")

    def _record(self, number: int) -> dict[str, Any] | None:
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        if not isinstance(block, dict):
            return None
        now = time.monotonic()
        for h in block["transactions"]:
            self.seen.setdefault(h, now)
        self.hashes[number] = block["hash"]
        self.blocks[number] = BlockSeen(
            number=number,
            seen=now,
            timestamp=int(block["timestamp"], 16),
            txs=len(block["transactions"]),
            gas_used=int(block["gasUsed"], 16),
            gas_limit=int(block["gasLimit"], 16),
            base_fee=int(block.get("baseFeePerGas", "0x0"), 16),
        )
        return block

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                head = int(self._call("eth_blockNumber", []), 16)
                number = self.head + 1
                while number <= head:
                    block = self._record(number)
                    if block is None:
                        break
                    parent = self.hashes.get(number - 1)
                    if parent is not None and parent != block["parentHash"] and number > 1:
                        # A short Clique fork: step back and record the new canonical blocks.
                        self.reorgs += 1
                        number = max(1, number - 1)
                        self.hashes.pop(number, None)
                        continue
                    self.head = number
                    number += 1
            except (requests.RequestException, ValueError, TypeError):
                pass
            self.stop.wait(POLL_S)


# -- RSS and CPU ----------------------------------------------------------------------


class Sampler(threading.Thread):
    """Every second: RSS of each geth; per-step maxima on demand."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.procs = {n: psutil.Process(p) for n, p in pids.items()}
        self.max_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self.last_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self.stop = threading.Event()

    def sample(self) -> None:
        for n, p in self.procs.items():
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            self.last_rss[n] = rss
            self.max_rss[n] = max(self.max_rss[n], rss)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(1.0)

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.procs.values():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total


# -- reads in their own process (the generator's threads must not delay them) ---------


def reader_main(
    access: BankAccess,
    subject: bytes,
    keys: list[bytes],
    *,
    start: float,
    seconds: float,
    conn: Connection,
) -> None:
    """From `start` (time.monotonic) for `seconds`, READ_RATE times a second: Bank B's SDK
    `get` of `subject` (block number + eth_getLogs), then one raw JSON-RPC eth_call of
    `states(keys)`, the subject's tradelines' state words (the node's share of a read)."""
    client = CreditClient.of(access)
    contract = registry_contract(http_web3(access.rpc_url), access.registry)
    call = {"to": access.registry, "data": contract.encode_abi("states", args=[keys])}
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, "latest"]}
    session = requests.Session()
    client.get(subject)  # warm: ABI, connection
    session.post(access.rpc_url, json=body, timeout=10).raise_for_status()
    sdk: list[float] = []
    raw: list[float] = []
    errors: Counter[str] = Counter()
    accounts = -1
    start = max(start, time.monotonic())
    k = 0
    while start + k / READ_RATE - start < seconds:
        due = start + k / READ_RATE
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        t = time.perf_counter()
        try:
            found = client.get(subject)
        except Exception as e:  # counted and shown: e.g. "header not found" in a Clique reorg
            errors[f"{type(e).__name__}: {e}"[:120]] += 1
        else:
            sdk.append(time.perf_counter() - t)
            accounts = found.summary.accounts
        t = time.perf_counter()
        try:
            answer = session.post(access.rpc_url, json=body, timeout=10).json()
        except (requests.RequestException, ValueError) as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        if "result" in answer:
            raw.append(time.perf_counter() - t)
        else:
            errors[f"raw eth_call: {answer.get('error')}"[:120]] += 1
        k += 1
    conn.send((sdk, raw, dict(errors), accounts))
    conn.close()


class Reader:
    """`reader_main` in a child process: `subject`'s SDK get and the raw `states(keys)`."""

    def __init__(
        self, access: BankAccess, subject: bytes, keys: list[bytes], start: float, seconds: float
    ) -> None:
        ctx = mp.get_context("spawn")
        self.recv, send = ctx.Pipe(duplex=False)
        window = {"start": start, "seconds": seconds, "conn": send}
        self.proc = ctx.Process(target=reader_main, args=(access, subject, keys), kwargs=window)
        self.proc.start()
        send.close()

    def result(self, timeout: float) -> tuple[list[float], list[float], dict[str, int], int]:
        """(SDK get latencies, raw eth_call latencies, errors, accounts the last get found)."""
        try:
            if self.recv.poll(timeout):
                sdk, raw, errors, accounts = self.recv.recv()
                self.proc.join(5)
                return list(sdk), list(raw), dict(errors), int(accounts)
        except (EOFError, OSError) as e:
            self.kill()
            return [], [], {f"the reader process died: {e!r}": 1}, -1
        self.kill()
        return [], [], {"the reader process did not answer": 1}, -1

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()  # our own child, by its handle
            self.proc.join(5)
