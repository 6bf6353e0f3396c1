"""What measures reads: the reader process (bank B's SDK `get` from its read index, and
from its node for comparison) and the lag sampler (the node's head minus the block the
index holds, every 100 ms)."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import requests

from orchestrator.credit.access import BankAccess
from orchestrator.credit.client import CreditClient

NODE_EVERY = 5  # one read from the node for every five from the index
LAG_POLL_S = 0.1


@dataclass
class Reads:
    index: list[float] = field(default_factory=list)  # seconds per SDK get from the index
    node: list[float] = field(default_factory=list)  # seconds per SDK get from the node
    fallbacks: int = 0  # gets the SDK answered from the node: the index was not fit
    behind: list[int] = field(default_factory=list)  # blocks behind, as each answer said
    accounts: int = -1  # tradelines the last get found
    errors: dict[str, int] = field(default_factory=dict)


def reader_main(
    access: BankAccess,
    subject: bytes,
    *,
    start: float,
    seconds: float,
    rate: float,
    conn: Connection,
) -> None:
    """From `start` (time.monotonic) for `seconds`, `rate` times a second: the SDK get of
    `subject` from the index (the client `access` describes), and every NODE_EVERY-th time
    also from the node alone."""
    by_index = CreditClient.of(access)
    by_node = CreditClient.of(dataclasses.replace(access, index_url=None))
    by_index.get(subject)  # warm: ABI, connections
    by_node.get(subject)
    out = Reads()
    errors: Counter[str] = Counter()
    start = max(start, time.monotonic())
    k = 0
    while k / rate < seconds:
        due = start + k / rate
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        try:
            t = time.perf_counter()
            found = by_index.get(subject)
            took = time.perf_counter() - t
            assert found.read is not None
            if found.read.source == "index":
                out.index.append(took)
                out.behind.append(found.read.behind)
            else:
                out.fallbacks += 1
            out.accounts = found.summary.accounts
            if k % NODE_EVERY == 0:
                t = time.perf_counter()
                by_node.get(subject)
                out.node.append(time.perf_counter() - t)
        except Exception as e:  # counted and shown
            errors[f"{type(e).__name__}: {e}"[:120]] += 1
        k += 1
    out.errors = dict(errors)
    conn.send(out)
    conn.close()


class Reader:
    """`reader_main` in a child process (the senders' threads must not delay it)."""

    def __init__(
        self, access: BankAccess, subject: bytes, *, start: float, seconds: float, rate: float
    ) -> None:
        ctx = mp.get_context("spawn")
        self.recv, send = ctx.Pipe(duplex=False)
        window = {"start": start, "seconds": seconds, "rate": rate, "conn": send}
        self.proc = ctx.Process(target=reader_main, args=(access, subject), kwargs=window)
        self.proc.start()
        send.close()

    def result(self, timeout: float) -> Reads:
        try:
            if self.recv.poll(timeout):
                reads: Reads = self.recv.recv()
                self.proc.join(5)
                return reads
        except (EOFError, OSError) as e:
            return Reads(errors={f"the reader process died: {e!r}": 1})
        finally:
            if self.proc.is_alive():
                self.proc.terminate()  # our own child, by its handle
                self.proc.join(5)
        return Reads(errors={"the reader process did not answer": 1})


class LagSampler(threading.Thread):
    """Every LAG_POLL_S: the node's head, then the block the index holds; the difference."""

    def __init__(self, node_url: str, index_url: str) -> None:
        super().__init__(daemon=True, name="lag-sampler")
        self.node_url, self.index_url = node_url, index_url.rstrip("/")
        self.lags: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
        while not self.stop.is_set():
            try:
                head = int(session.post(self.node_url, json=body, timeout=5).json()["result"], 16)
                status = session.get(self.index_url + "/v1/status", timeout=5).json()
                held = (status.get("block") or {}).get("number")
                if isinstance(held, int):
                    self.lags.append(max(0, head - held))
            except (requests.RequestException, ValueError, KeyError):
                pass
            self.stop.wait(LAG_POLL_S)
