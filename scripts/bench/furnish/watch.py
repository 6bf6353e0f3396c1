"""What the furnishing benchmark watches while `poactl credit furnish` runs: each node's
pending transactions and new heads (WebSocket subscriptions, straight to the node), who
sealed each block (Clique, over IPC), how long geth took to import or build each block
(its log), and RSS and CPU (the load benchmark's sampler)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from orchestrator.geth.ipc import ipc_probe


@dataclass
class Head:
    number: int
    hash: str
    parent: str
    seen: float  # time.monotonic() when the node announced it
    gas_used: int
    gas_limit: int


@dataclass
class NodeWatch:
    """One node's view: when each transaction became pending there, each head it took."""

    node: str
    url: str  # ws://...
    pending: dict[str, float] = field(default_factory=dict)
    heads: list[Head] = field(default_factory=list)
    error: str = ""
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{self.node}")
        self.thread.start()
        if not self.ready.wait(10):
            raise SystemExit(f"could not subscribe to {self.node} ({self.url}): {self.error}")

    def _run(self) -> None:
        try:
            with connect(self.url, max_size=2**24, open_timeout=10) as ws:
                subs = {
                    _subscribe(ws, 1, "newPendingTransactions"): "pending",
                    _subscribe(ws, 2, "newHeads"): "head",
                }
                self.ready.set()
                while not self.stop.is_set():
                    try:
                        message = json.loads(ws.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    now = time.monotonic()
                    params = message.get("params") or {}
                    kind = subs.get(str(params.get("subscription")))
                    result = params.get("result")
                    if kind == "pending" and isinstance(result, str):
                        self.pending.setdefault(result, now)
                    elif kind == "head" and isinstance(result, dict):
                        self.heads.append(
                            Head(
                                int(result["number"], 16),
                                result["hash"],
                                result["parentHash"],
                                now,
                                int(result["gasUsed"], 16),
                                int(result["gasLimit"], 16),
                            )
                        )
        except (OSError, WebSocketException, ValueError, KeyError) as e:
            self.error = f"{type(e).__name__}: {e}"
            self.ready.set()


def _subscribe(ws: Connection, request_id: int, what: str) -> str:
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "eth_subscribe",
                        "params": [what]}))  # fmt: skip
    while True:
        answer = json.loads(ws.recv(timeout=10))
        if answer.get("id") == request_id:
            if "error" in answer:
                raise ValueError(f"eth_subscribe {what}: {answer['error']}")
            return str(answer["result"])


def sealers(ipc: Path, numbers: Iterable[int]) -> dict[int, str]:
    """Block number -> the signer address that sealed it (`clique_getSigner`)."""
    found = {}
    for n in numbers:
        signer = ipc_probe(ipc, "clique_getSigner", [hex(n)])
        if isinstance(signer, str):
            found[n] = signer.lower()
    return found


_IMPORTED = re.compile(
    r"Imported new chain segment\s+number=([\d,]+).*?txs=(\d+)\s+mgas=([\d.]+)"
    r"\s+elapsed=\"?([\d.]+)(ms|s|µs)"
)
_BUILT = re.compile(
    r"Commit new sealing work\s+number=([\d,]+).*?txs=(\d+).*?elapsed=\"?([\d.]+)(ms|s|µs)"
)
_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6}


@dataclass(frozen=True)
class GethTiming:
    number: int
    txs: int
    seconds: float
    mgas: float = 0.0


def geth_timings(log: Path, first: int, last: int) -> tuple[list[GethTiming], list[GethTiming]]:
    """(imports, builds) that geth logged for blocks first..last: `Imported new chain
    segment` (a block from a peer, executed and written) and `Commit new sealing work` (a
    sealer filling its next block)."""
    imports: list[GethTiming] = []
    builds: list[GethTiming] = []
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return imports, builds
    for line in text.splitlines():
        if "Imported new chain segment" in line and (m := _IMPORTED.search(line)):
            number = int(m.group(1).replace(",", ""))
            if first <= number <= last:
                seconds = float(m.group(4)) * _UNIT[m.group(5)]
                imports.append(GethTiming(number, int(m.group(2)), seconds, float(m.group(3))))
        elif "Commit new sealing work" in line and (m := _BUILT.search(line)):
            number = int(m.group(1).replace(",", ""))
            if first <= number <= last and int(m.group(2)) > 0:
                seconds = float(m.group(3)) * _UNIT[m.group(4)]
                builds.append(GethTiming(number, int(m.group(2)), seconds))
    return imports, builds


def raw_call(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(url, json=body, timeout=30).json().get("result")
