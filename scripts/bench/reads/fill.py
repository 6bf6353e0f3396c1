"""Filling the chain with real furnish transactions: each bank's lane signs batches of new
records as it goes and sends them raw to its own node, keeping at most `window`
transactions in flight (sent, not yet in a block, judged by the account's nonce)."""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from ..load.signing import Lane, subject_calldata
from ..load.traffic import chunk_end

POLL_S = 0.25
NODE_AWAY_S = 180.0  # a node restarted by its agent answers again well within this


@dataclass
class Filled:
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@retry(
    retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout)),
    stop=stop_after_delay(NODE_AWAY_S),
    wait=wait_fixed(1.0),
    reraise=True,
)
def _post(session: requests.Session, url: str, **kwargs: Any) -> Any:
    """One JSON-RPC post, retried while the node does not answer for up to
    `NODE_AWAY_S`: an agent restarts a geth that fell behind under the fill."""
    return session.post(url, **kwargs).json()


def _nonce(session: requests.Session, lane: Lane) -> int:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_getTransactionCount",
        "params": [lane.address, "latest"],
    }
    return int(_post(session, lane.url, json=body, timeout=30)["result"], 16)


def _item(lane: Lane, tag: str) -> str:
    """The next signed furnish of the lane (new subjects), as a JSON-RPC item."""
    key = lane.secret.encode()
    prefix = f"F{tag}{lane.id_part}".upper()
    subjects = [
        hmac.digest(key, f"{prefix}{lane.serial + j}".encode(), "sha256") for j in range(lane.k)
    ]
    lane.serial += lane.k
    raw, _ = lane.signer.sign(
        lane.next_nonce, subject_calldata(lane.template, lane.offsets, subjects)
    )
    lane.next_nonce += 1
    return (
        f'{{"jsonrpc":"2.0","id":{lane.next_nonce},"method":"eth_sendRawTransaction",'
        f'"params":["0x{raw.hex()}"]}}'
    )


def _fill_lane(lane: Lane, transactions: int, window: int, tag: str, errors: list[str]) -> None:
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    first = lane.next_nonce
    last = first + transactions
    while True:
        done = _nonce(session, lane)
        if done >= last:
            return
        items = []
        while lane.next_nonce < last and lane.next_nonce - done < window:
            items.append(_item(lane, tag))
        i = 0
        while i < len(items):
            j = chunk_end(items, i, len(items))
            answer = _post(
                session, lane.url, data="[" + ",".join(items[i:j]) + "]", headers=headers,
                timeout=60,
            )  # fmt: skip
            errors += [str(a["error"].get("message"))[:80] for a in answer if "error" in a]
            i = j
        if errors:
            return
        time.sleep(POLL_S)


def fill(
    lanes: Sequence[Lane], records: int, *, window: int, tag: str, progress: float = 15.0
) -> Filled:
    """Write `records` new records (rounded up to whole transactions per lane) and wait
    until all are in blocks; SystemExit if the node refuses one."""
    k = lanes[0].k
    per_lane = -(-records // (k * len(lanes)))
    errors: list[str] = []
    t0 = time.monotonic()
    starts = [lane.next_nonce for lane in lanes]
    threads = [
        threading.Thread(
            target=_fill_lane,
            args=(lane, per_lane, window, tag, errors),
            name=f"fill-{lane.bank}",
            daemon=True,
        )
        for lane in lanes
    ]
    for t in threads:
        t.start()
    last_print = t0
    session = requests.Session()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if time.monotonic() - last_print >= progress:
            last_print = time.monotonic()
            done = sum(_nonce(session, lane) - s for lane, s in zip(lanes, starts, strict=True))
            print(
                f"  … filled {done * k} of {per_lane * k * len(lanes)} records "
                f"({done * k / (last_print - t0):.0f} records/s)",
                flush=True,
            )
    if errors:
        raise SystemExit(f"the node refused a furnish transaction: {errors[:3]}")
    return Filled(per_lane * k * len(lanes), time.monotonic() - t0)
