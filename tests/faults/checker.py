"""The independent checker: what every node's chain holds, judged without the agents.

It reads each node's geth over its IPC socket (JSON-RPC on a unix socket, with a client
of its own: nothing of poactl's geth or agent code), so a cut network never hides a node
from it. A watcher thread per node samples the head every `POLL` seconds and fetches
every block it has not seen (walking parent hashes), so blocks that are later reorged
away are still on record. For each block it recovers the signer from the Clique seal in
the header (keccak256 of the RLP header without the seal, ecrecover) and checks that the
header it re-encoded hashes to the block's hash.

From that record it answers: which heights one identity signed twice, when the chain
stalled and resumed, when every node was at one head, and whether what clients were
told (acknowledgements) is in the final canonical chain, and how deep a reorg went.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import rlp  # type: ignore[import-untyped]
from eth_keys import keys
from eth_utils import keccak

K = TypeVar("K", bound=Hashable)  # what blocks are grouped by

POLL = 0.5
SEAL = 65


class IpcError(Exception):
    pass


def ipc_call(path: Path, method: str, params: list[Any], *, timeout: float = 2.0) -> Any:
    """One JSON-RPC call over geth's unix socket (a frozen geth times out)."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(request.encode())
            buffer = b""
            decoder = json.JSONDecoder()
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise IpcError("connection closed")
                buffer += chunk
                try:
                    answer, _ = decoder.raw_decode(buffer.decode())
                    break
                except ValueError:
                    continue
    except OSError as e:
        raise IpcError(str(e)) from e
    if "error" in answer:
        raise IpcError(str(answer["error"]))
    return answer.get("result")


def _b(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str.removeprefix("0x"))


def _i(hex_str: str) -> int:
    return int(hex_str, 16)


def header_fields(block: Mapping[str, Any]) -> list[Any]:
    """The header's RLP fields, in geth's order (London: with baseFee)."""
    fields = [
        _b(block["parentHash"]), _b(block["sha3Uncles"]), _b(block["miner"]),
        _b(block["stateRoot"]), _b(block["transactionsRoot"]), _b(block["receiptsRoot"]),
        _b(block["logsBloom"]), _i(block["difficulty"]), _i(block["number"]),
        _i(block["gasLimit"]), _i(block["gasUsed"]), _i(block["timestamp"]),
        _b(block["extraData"]), _b(block["mixHash"]), _b(block["nonce"]),
    ]  # fmt: skip
    if block.get("baseFeePerGas") is not None:
        fields.append(_i(block["baseFeePerGas"]))
    return fields


def recover_signer(block: Mapping[str, Any]) -> str:
    """The address that sealed `block` (a JSON-RPC block), from its extraData seal.
    ValueError when the header does not hash to the block's hash or the seal is bad."""
    fields = header_fields(block)
    if "0x" + keccak(rlp.encode(fields)).hex() != block["hash"]:
        raise ValueError(f"block {block['hash']}: the re-encoded header has another hash")
    extra = fields[12]
    if len(extra) < 32 + SEAL:
        raise ValueError(f"block {block['hash']}: extraData has no seal")
    signature = extra[-SEAL:]
    unsigned = [*fields[:12], extra[:-SEAL], *fields[13:]]
    v = signature[64]
    sig = keys.Signature(signature[:64] + bytes([v - 27 if v >= 27 else v]))
    return sig.recover_public_key_from_msg_hash(keccak(rlp.encode(unsigned))).to_checksum_address()


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent: str
    signer: str
    timestamp: int
    transactions: tuple[str, ...]
    first_seen: float  # monotonic time the checker first saw it, on any node
    seen_on: str = ""  # the node it was first seen on
    difficulty: int = 0


@dataclass(frozen=True)
class Sample:
    t: float  # monotonic
    node: str
    number: int
    hash: str


@dataclass
class Record:
    blocks: dict[str, Block] = field(default_factory=dict)  # hash -> block
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # blocks that failed the checks


class Checker:
    """Watches nodes (name -> IPC socket path); `start`, then `stop` at the end."""

    def __init__(self, nodes: Mapping[str, Path]) -> None:
        self.nodes = dict(nodes)
        self.record = Record()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add_nodes(self, nodes: Mapping[str, Path]) -> None:
        for name, path in nodes.items():
            if name not in self.nodes:
                self.nodes[name] = path
                if self._threads:
                    self._spawn(name)

    def start(self) -> Checker:
        for name in self.nodes:
            self._spawn(name)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _spawn(self, name: str) -> None:
        t = threading.Thread(target=self._watch, args=(name,), daemon=True, name=f"check-{name}")
        self._threads.append(t)
        t.start()

    def _watch(self, name: str) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(IpcError, ValueError, KeyError, TypeError):
                self.observe(name)
            self._stop.wait(POLL)

    def observe(self, name: str) -> Sample | None:
        """Sample `name`'s head once and record every block of it not seen yet."""
        path = self.nodes[name]
        head = ipc_call(path, "eth_getBlockByNumber", ["latest", False])
        if head is None:
            return None
        now = time.monotonic()
        sample = Sample(now, name, _i(head["number"]), head["hash"])
        block: Mapping[str, Any] | None = head
        while block is not None and _i(block["number"]) > 0:
            with self._lock:
                if block["hash"] in self.record.blocks:
                    break
            self._keep(block, now, name)
            block = ipc_call(path, "eth_getBlockByHash", [block["parentHash"], False])
        with self._lock:
            self.record.samples.append(sample)
        return sample

    def _keep(self, block: Mapping[str, Any], now: float, node: str = "") -> None:
        try:
            signer = recover_signer(block)
        except ValueError as e:
            with self._lock:
                self.record.problems.append(str(e))
            signer = "unknown"
        kept = Block(
            _i(block["number"]), block["hash"], block["parentHash"], signer,
            _i(block["timestamp"]), tuple(block.get("transactions") or ()), now, node,
            _i(block["difficulty"]),
        )  # fmt: skip
        with self._lock:
            self.record.blocks.setdefault(kept.hash, kept)

    # -- what the record says --------------------------------------------------------
    def blocks(self) -> list[Block]:
        with self._lock:
            return list(self.record.blocks.values())

    def samples(self, since: float = 0.0) -> list[Sample]:
        with self._lock:
            return [s for s in self.record.samples if s.t >= since]

    def signed_twice(self, since: float = 0.0) -> dict[tuple[str, int], list[Block]]:
        """(signer, height) -> the distinct blocks it signed there, where more than one
        and the last of them was first seen at or after `since`."""
        return self._several(lambda b: (b.signer, b.number), since)

    def forked_heights(self, since: float = 0.0) -> dict[int, list[Block]]:
        """height -> the sibling blocks seen there (by any signers), where more than one
        and the last of them was first seen at or after `since`: Clique's forks, each
        resolved by a reorg on some node."""
        return self._several(lambda b: b.number, since)

    def _several(self, key: Callable[[Block], K], since: float) -> dict[K, list[Block]]:
        """The blocks grouped by `key`, oldest first, for the groups of more than one
        whose last block was first seen at or after `since`."""
        seen: dict[K, list[Block]] = defaultdict(list)
        for b in self.blocks():
            seen[key(b)].append(b)
        return {
            k: sorted(v, key=lambda b: b.first_seen)
            for k, v in seen.items()
            if len(v) > 1 and max(b.first_seen for b in v) >= since
        }

    def highest(self) -> int:
        return max((b.number for b in self.blocks()), default=0)

    def first_block_above(self, number: int, since: float) -> float | None:
        """When the checker first saw a block above `number` (at or after `since`)."""
        times = [b.first_seen for b in self.blocks() if b.number > number and b.first_seen >= since]
        return min(times, default=None)

    def heads(self) -> dict[str, Sample]:
        """Each node's latest sample."""
        latest: dict[str, Sample] = {}
        for s in self.samples():
            latest[s.node] = s
        return latest

    def all_at_one_head(self, nodes: Iterable[str], *, since: float) -> bool:
        """Whether the latest sample (taken after `since`) of every node names one block."""
        heads = self.heads()
        wanted = list(nodes)
        if any(n not in heads or heads[n].t < since for n in wanted):
            return False
        return len({heads[n].hash for n in wanted}) == 1

    def canonical(self, node: str) -> dict[int, str]:
        """Height -> hash of `node`'s canonical chain, from the head back to block 1."""
        path = self.nodes[node]
        head = ipc_call(path, "eth_getBlockByNumber", ["latest", False])
        chain: dict[int, str] = {}
        block = head
        while block is not None and _i(block["number"]) > 0:
            chain[_i(block["number"])] = block["hash"]
            with self._lock:
                known = self.record.blocks.get(block["parentHash"])
            if known is not None:  # walk our record where we can: no more IPC calls
                while known is not None:
                    chain[known.number] = known.hash
                    with self._lock:
                        known = self.record.blocks.get(known.parent)
                break
            self._keep(block, time.monotonic(), node)
            block = ipc_call(path, "eth_getBlockByHash", [block["parentHash"], False])
        return chain

    def fork_point(self, block_hash: str, chain: Mapping[int, str]) -> int | None:
        """The highest height where the branch ending at `block_hash` meets `chain`."""
        with self._lock:
            known = self.record.blocks.get(block_hash)
            while known is not None:
                if chain.get(known.number) == known.hash:
                    return known.number
                known = self.record.blocks.get(known.parent)
        return None
