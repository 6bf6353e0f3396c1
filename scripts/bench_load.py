#!/usr/bin/env python3
"""Benchmark: credit-record writes under open-loop load, reads under that load, RSS, gas.

Runs the default consortium (orchestrator/consortium.yaml: 2 banks x (2 validators +
1 spare) = 6 agents, 4 Clique signers, period 2 s) on free ports in a new state dir
under /tmp, through the real CLI (`poactl up`, which also deploys the CreditRegistry),
once per configuration:

* `tuned`: the default consortium with a larger block gas limit (`gas_limit` in the
  consortium file, which sets the genesis gas limit and every node's --miner.gaslimit)
  and the file's `tuning` section (--tuning: geth's cache, --miner.recommit, txpool);
* `baseline`: the same nodes as geth's private-network documentation sets them up:
  30M gas limit, geth's default txpool (which is also the shipped default file).

Writes are `report` transactions of the CreditRegistry, each creating a new tradeline
for a new subject (a pseudonym under the consortium secret), signed locally with each
bank's transaction key from its vault and sent raw (`eth_sendRawTransaction`) to the
bank's own node (its first node), bank-a and bank-b alternating. Before each timed
phase every transaction is encoded and signed (nonces are consecutive: the benchmark is
the only writer of each bank's account); the timed phase only sends them, open loop:
transaction i is due at i / rate seconds and everything due is sent in one JSON-RPC
batch per bank every few milliseconds, whatever the chain does. Inclusion is the moment
the submitting bank's node shows the transaction in a block (its head polled every
25 ms): latency is send -> seen in a block there.

The rate steps up (x1.5 from --start-rate) until inclusion falls behind, then two
bisection steps narrow it down: saturation is the highest rate at which every write
was in a block within 3 block periods of the last send and the p99 latency of the
second half of the step was at most 3 periods. Then steps at 50 %, 70 % and 90 % of
saturation are measured, with Bank B's SDK `get` of one subject (three tradelines from
both banks) from its own node at 20 reads/s in a separate process. RSS (psutil) of each
geth, by the pid in <state>/nodes/<node>/status.json, is sampled every second; gas per
write comes from receipts. Prints everything measured; `--record` rewrites this
benchmark's section of docs/benchmarks.md. Goals (issue 5): >= 1,000 writes/s sustained,
p99 <= 2.5 s at 70 %, reads p99 <= 10 ms, <= 300 MB RSS per node.

    .venv/bin/python scripts/bench_load.py [--gas-limit 500000000] [--tuning '{...}'] [--record]
    .venv/bin/python scripts/bench_load.py --configs tuned --start-rate 10 --max-rate 20 \\
        --step-seconds 4 --measure-seconds 4      # a smoke run
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import requests
import rlp  # type: ignore[import-untyped]
import yaml
from bench_startup import POACTL, ROOT, geth_version, machine, move_ports, record
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from orchestrator.config import NodeSpec, parse_config
from orchestrator.credit.access import BankAccess
from orchestrator.credit.client import CreditClient
from orchestrator.credit.contract import registry_contract
from orchestrator.credit.demo import demo_record
from orchestrator.credit.deployment import ConsortiumResolver
from orchestrator.credit.pseudonym import pseudonym
from orchestrator.credit.records import record_to_contract
from orchestrator.errors import StateError
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.proc import runs_with_arg
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.registry import local_resolver
from orchestrator.statefile import read_json

try:  # libsecp256k1 from PyPI (`pip install coincurve`); eth_keys also uses it when present
    import coincurve
except ImportError:  # pragma: no cover - the slower eth_account path below
    coincurve = None  # type: ignore[assignment]

BEGIN, END = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"
GOAL_WRITES = 1000.0
GOAL_P99_70_S = 2.5
GOAL_READ_P99_MS = 10.0
GOAL_RSS_MB = 300.0
BASELINE_GAS = 30_000_000  # geth's private-network documentation (and geth's default)
TIP_WEI = 10**9  # geth's default --miner.gasprice: a lower tip is never mined
MAX_FEE_WEI = 10**12  # far above any base fee these runs reach; only gasUsed x price is paid
GAS_MARGIN = 1.25  # as the SDK: a margin over eth_estimateGas
POLL_S = 0.05  # block observers poll each node's head this often
TICK_S = 0.005  # the sender sends what is due at least this often
MAX_BATCH = 500  # geth's --rpc.batch-request-limit is 1000
READ_RATE = 20.0  # reads per second in the reader process
UP_TIMEOUT_S = 180.0
DRAIN_MAX_S = 120.0  # wait this long at most for a backlog to clear between steps
STEP_FACTOR = 1.5
# The tuned configuration's `tuning` section (orchestrator.config.Tuning):
# * cache_mb: geth's --cache (default 1024 MB); this chain's state is tiny, 128 MB holds it.
# * memory_limit_mb: GOMEMLIMIT for geth. Without it a node's RSS reached ~1 GB under this
#   load whatever --cache said: garbage the Go collector had not yet reclaimed. 200 MiB
#   held the nodes at 222 MB up to 118 writes/s, but 256 MiB after an overload (thousands
#   of transactions in every pool, 256 recent blocks of up to 2,000 writes in geth's block
#   caches, which no flag sizes) kept the collector busy: the nodes then fell behind even
#   at 84 writes/s. 512 MiB leaves that live heap room.
# * recommit_seconds: geth's miner re-fills the block it is sealing only every
#   --miner.recommit (default 2 s, the block period), so a write that misses the work
#   committed at the last head waits for the block after next; 1 s is geth's minimum.
# * txpool: each bank sends hundreds of transactions per block from one account; geth's
#   64 queued per account (nonce gaps while a batch arrives) drops the rest.
TUNED = {
    "cache_mb": 128,
    "memory_limit_mb": 512,
    "recommit_seconds": 1,
    "txpool_account_slots": 4096,
    "txpool_global_slots": 16384,
    "txpool_account_queue": 4096,
    "txpool_global_queue": 8192,
}
BISECTIONS = 2


# -- signing ------------------------------------------------------------------------


class Signer:
    """EIP-1559 transactions signed with coincurve (libsecp256k1) and rlp, the same bytes as
    eth_account's `sign_transaction` (checked on a sample at start), about 5x faster; without
    coincurve, eth_account signs (slower pre-signing, same transactions)."""

    def __init__(self, key_hex: str, chain_id: int, to: str, gas: int) -> None:
        self.key = coincurve.PrivateKey(bytes(HexBytes(key_hex))) if coincurve else None
        self.account = Account.from_key(key_hex)
        self.chain_id = chain_id
        self.to = bytes(HexBytes(to))
        self.to_hex = to
        self.gas = gas

    def sign(self, nonce: int, data: bytes) -> tuple[bytes, str]:
        """(raw transaction, 0x hash)."""
        if self.key is None:
            signed = self.account.sign_transaction(self._tx(nonce, data))
            return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
        fields: list[Any] = [
            self.chain_id, nonce, TIP_WEI, MAX_FEE_WEI, self.gas, self.to, 0, data, [],
        ]  # fmt: skip
        sig = self.key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        raw = b"\x02" + rlp.encode([*fields, v, r, s])
        return raw, "0x" + keccak(raw).hex()

    def _tx(self, nonce: int, data: bytes) -> dict[str, Any]:
        return {
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "gas": self.gas,
            "maxFeePerGas": MAX_FEE_WEI, "maxPriorityFeePerGas": TIP_WEI, "value": 0,
            "data": data, "to": self.to_hex,
        }  # fmt: skip

    def check_against_eth_account(self, data: bytes) -> None:
        ours = self.sign(7, data)
        theirs = self.account.sign_transaction(self._tx(7, data))
        if ours[0] != bytes(theirs.raw_transaction):
            raise SystemExit("the fast signer disagrees with eth_account: refusing to run")


# -- the banks' lanes -----------------------------------------------------------------


@dataclass
class Lane:
    """One bank's writes: its key, its own node, its next nonce, its report template."""

    bank: str
    node: str
    url: str
    address: str
    signer: Signer
    template: bytes  # report(subject, furnisher, Report) calldata; the subject is patched in
    secret: str
    next_nonce: int
    others: list[str] = field(default_factory=list)  # the bank's other nodes' RPC URLs
    serial: int = 0  # subjects written so far

    @property
    def id_part(self) -> str:
        """The bank in the made-up national IDs (letters and digits only, as normalized)."""
        return "".join(c for c in self.bank.upper() if c.isalnum())


@dataclass
class Batch:
    """A lane's pre-signed transactions for one step: due times, JSON-RPC items, hashes."""

    lane: Lane
    offsets: list[float]
    items: list[str]
    hashes: list[str]
    sent_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    failed: set[int] = field(default_factory=set)
    max_lag: float = 0.0


def subject_calldata(template: bytes, subject: bytes) -> bytes:
    # report(bytes32 subject, address furnisher, Report r): a static tuple, encoded inline,
    # so the subject is the 32 bytes after the selector.
    return template[:4] + subject + template[36:]


def presign(lanes: Sequence[Lane], rate: float, seconds: float, tag: str) -> list[Batch]:
    """Transaction i is due at i / rate; lanes alternate. Consumes nonces and subjects."""
    total = max(len(lanes), round(rate * seconds))
    batches = [Batch(lane, [], [], []) for lane in lanes]
    for i in range(total):
        b = batches[i % len(lanes)]
        lane = b.lane
        subject = pseudonym_fast(lane.secret, f"B{tag}{lane.id_part}{lane.serial}")
        lane.serial += 1
        raw, tx_hash = lane.signer.sign(lane.next_nonce, subject_calldata(lane.template, subject))
        lane.next_nonce += 1
        b.offsets.append(i / rate)
        b.items.append(
            f'{{"jsonrpc":"2.0","id":{len(b.items)},"method":"eth_sendRawTransaction",'
            f'"params":["0x{raw.hex()}"]}}'
        )
        b.hashes.append(tx_hash)
    for b in batches:
        b.sent_at = [math.nan] * len(b.items)
    return batches


def pseudonym_fast(secret: str, national_id: str) -> bytes:
    """The SDK's pseudonym (HMAC-SHA256 of the normalized ID) of an ID that is already
    normalized (letters and digits); `Run._lane` checks it against the SDK at start."""
    return hmac.new(secret.encode(), national_id.upper().encode(), hashlib.sha256).digest()


def resend(missing: Sequence[tuple[Batch, int]]) -> int:
    """Send `missing` transactions (by batch, index) again through each bank's other nodes."""
    headers = {"Content-Type": "application/json"}
    for b in {id(b): b for b, _ in missing}.values():
        items = [b.items[k] for bb, k in missing if bb is b]
        for i in range(0, len(items), MAX_BATCH):
            body = "[" + ",".join(items[i : i + MAX_BATCH]) + "]"
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
        j = min(due, i + MAX_BATCH)
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
    access: BankAccess, subject: bytes, start: float, seconds: float, conn: Connection
) -> None:
    """From `start` (time.monotonic) for `seconds`, READ_RATE times a second: Bank B's SDK
    `get` of `subject`, then the same `tradelinesOf` as one raw eth_call (the node's share)."""
    client = CreditClient(
        access.rpc_url,
        registry=access.registry,
        account_key=access.account_key,
        pseudonym_secret=access.pseudonym_secret,
    )
    contract = registry_contract(http_web3(access.rpc_url), access.registry)
    call = {"to": access.registry, "data": contract.encode_abi("tradelinesOf", args=[subject])}
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
        answer = session.post(access.rpc_url, json=body, timeout=10).json()
        if "result" in answer:
            raw.append(time.perf_counter() - t)
        else:
            errors[f"raw eth_call: {answer.get('error')}"[:120]] += 1
        k += 1
    conn.send((sdk, raw, dict(errors), accounts))
    conn.close()


class Reader:
    def __init__(self, access: BankAccess, subject: bytes, start: float, seconds: float) -> None:
        ctx = mp.get_context("spawn")
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=reader_main, args=(access, subject, start, seconds, send))
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


# -- one step -------------------------------------------------------------------------


def pct(xs: Sequence[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


@dataclass
class Step:
    label: str
    rate: float
    seconds: float
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    included: int = 0
    late: int = 0  # not in a block within 3 periods of the last send
    never: int = 0  # not in a block within DRAIN_MAX_S
    resent: int = 0  # sent again through the bank's other nodes while draining
    p50: float = math.nan
    p99: float = math.nan
    p99_second_half: float = math.nan
    max_latency: float = math.nan
    send_rate: float = math.nan
    max_lag: float = 0.0
    blocks: int = 0
    max_txs_block: int = 0
    mean_txs_block: float = 0.0
    max_gas_fill: float = 0.0  # gasUsed / gasLimit, max over the step's blocks
    cpu_machine: float = math.nan  # % of all cores over the sending phase
    cpu_geths: float = math.nan  # % of one core, the six geths together
    cpu_generator: float = math.nan  # % of one core, this process
    txpool: dict[str, str] = field(default_factory=dict)  # node -> pending/queued at end
    reads: list[float] = field(default_factory=list)  # SDK get, seconds
    raw_reads: list[float] = field(default_factory=list)  # the same as one raw eth_call
    read_errors: dict[str, int] = field(default_factory=dict)
    read_accounts: int = -1
    hashes: list[str] = field(default_factory=list)
    kept_up: bool = False
    why: str = ""


def wait_for_registry(resolver: ConsortiumResolver, bank: str, timeout: float = 30.0) -> None:
    """`up` returns once the registry is deployed through the founder's node; another
    bank's node may still be a block behind: wait until the bank's node has its code."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            resolver.resolve(bank)
            return
        except StateError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Run:
    """One configuration's consortium, lanes, observers and sampler."""

    def __init__(
        self,
        name: str,
        gas_limit: int,
        work: Path,
        port_base: int,
        tuning: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.gas_limit, self.tuning = name, gas_limit, dict(tuning or {})
        self.state = work / f"state-{name}"
        self.config_file = work / f"consortium-{name}.yaml"
        config = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
        config["gas_limit"] = gas_limit
        config["tuning"] = self.tuning
        move_ports(config, port_base)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.consortium = parse_config(self.config_file.read_text(), source=str(self.config_file))
        self.period = self.consortium.settings.block_period
        self.lanes: list[Lane] = []
        self.observers: dict[str, Observer] = {}
        self.sampler: Sampler | None = None
        self.local = LocalConsortium(self.state)
        self.up_seconds = math.nan
        self.signers: dict[str, str] = {}
        self.steps: list[Step] = []
        self.reader_access: BankAccess | None = None
        self.read_subject = b""
        self.idle_reads: list[float] = []
        self.idle_raw: list[float] = []
        self.idle_read_errors: dict[str, int] = {}
        self.gas: list[int] = []
        self.receipt_failures = 0
        self.rss_idle: dict[str, int] = {}
        self.reader_node = ""

    # -- set-up ------------------------------------------------------------------------

    def up(self) -> None:
        t0 = time.monotonic()
        done = subprocess.run(
            [POACTL, "up", "--config", str(self.config_file), "--state-dir", str(self.state),
             "--timeout", str(UP_TIMEOUT_S)],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        self.up_seconds = time.monotonic() - t0
        if done.returncode != 0:
            raise SystemExit(f"poactl up failed ({done.returncode}):\n{done.stderr}")
        print(f"[{self.name}] poactl up: {self.up_seconds:.1f} s", flush=True)
        self.signers = self.local.signers()
        pids = {}
        for node in self.consortium.nodes:
            paths = self.local.layout.node(node.name)
            pid = (read_json(paths.status) or {}).get("geth_pid")
            if not (isinstance(pid, int) and runs_with_arg(pid, str(paths.datadir))):
                raise SystemExit(f"no running geth for {node.name} (pid {pid})")
            pids[node.name] = pid
        tuning = self.consortium.settings.tuning
        flags, limit = " ".join(tuning.flags()), tuning.environment().get("GOMEMLIMIT")
        for name, pid in sorted(pids.items()):
            geth = psutil.Process(pid)
            if flags not in " ".join(geth.cmdline()):
                raise SystemExit(f"{name}'s geth does not run with {flags}")
            if geth.environ().get("GOMEMLIMIT") != limit:
                raise SystemExit(f"{name}'s geth does not run with GOMEMLIMIT={limit}")
        self.sampler = Sampler(pids)
        self.sampler.start()
        resolver = local_resolver(self.state)
        for bank in self.consortium.members():
            wait_for_registry(resolver, bank)
        first: dict[str, NodeSpec] = {}
        for node in self.consortium.nodes:
            first.setdefault(node.member, node)
        for bank in self.consortium.members():
            access = resolver.resolve(bank)
            node = first[bank]
            assert access.rpc_url == node.rpc_url, (access.rpc_url, node.rpc_url)
            lane = self._lane(bank, node.name, access)
            lane.others = [
                n.rpc_url for n in self.consortium.nodes if n.member == bank and n is not node
            ]
            self.lanes.append(lane)
            self.observers[node.name] = Observer(node.name, node.rpc_url)
        for o in self.observers.values():
            o.start()
        self._seed_reads(resolver)

    def _lane(self, bank: str, node: str, access: BankAccess) -> Lane:
        w3 = http_web3(access.rpc_url, timeout=10)
        address = Account.from_key(access.account_key.value).address
        contract = registry_contract(w3, access.registry)
        record = demo_record()
        subject = pseudonym(access.pseudonym_secret, "BENCH0")
        template = bytes(
            HexBytes(contract.encode_abi("report", args=[subject, address,
                                                         record_to_contract(record)]))
        )  # fmt: skip
        other = pseudonym(access.pseudonym_secret, "BENCH1")
        full = bytes(
            HexBytes(contract.encode_abi("report", args=[other, address,
                                                         record_to_contract(record)]))
        )  # fmt: skip
        if subject_calldata(template, other) != full:
            raise SystemExit("the calldata template does not match the ABI encoding")
        sample = f"Bt0x{bank.upper().replace('-', '')}17"
        if pseudonym_fast(access.pseudonym_secret.value, sample) != pseudonym(
            access.pseudonym_secret, sample
        ):
            raise SystemExit("the fast pseudonym does not match the SDK's")
        call = {"from": address, "to": access.registry, "data": "0x" + template.hex()}
        gas = int(int(w3.eth.estimate_gas(call)) * GAS_MARGIN)  # type: ignore[arg-type]
        signer = Signer(access.account_key.value, int(w3.eth.chain_id), access.registry, gas)
        signer.check_against_eth_account(template)
        nonce = int(w3.eth.get_transaction_count(address, "pending"))
        print(f"[{self.name}] {bank}: account {address} via {node} ({access.rpc_url}), "
              f"gas limit per write {gas} (estimate x {GAS_MARGIN}), nonce {nonce}",
              flush=True)  # fmt: skip
        return Lane(bank, node, access.rpc_url, address, signer, template,
                    access.pseudonym_secret.value, nonce)  # fmt: skip

    def _seed_reads(self, resolver: ConsortiumResolver) -> None:
        """The subject Bank B reads: two tradelines from bank-a and one from bank-b, written
        through the SDK (and waited for) before any load."""
        banks = self.consortium.members()
        reader_bank = banks[-1]
        pending = []
        for bank, refs in ((banks[0], ("READ-A1", "READ-A2")), (reader_bank, ("READ-B1",))):
            access = resolver.resolve(bank)
            client = CreditClient(
                access.rpc_url,
                registry=access.registry,
                account_key=access.account_key,
                pseudonym_secret=access.pseudonym_secret,
            )
            subject = client.subject("BENCHREADER1")
            for ref in refs:
                record = dataclasses.replace(demo_record(), account_ref=ref)
                pending.append(client.report(subject, record))
            self.read_subject = subject
        for p in pending:
            p.wait(timeout=60)
        for lane in self.lanes:  # the SDK used the banks' accounts: continue after it
            w3 = http_web3(lane.url, timeout=10)
            lane.next_nonce = int(
                w3.eth.get_transaction_count(to_checksum_address(lane.address), "pending")
            )
        self.reader_access = resolver.resolve(reader_bank)
        self.reader_node = next(n.name for n in self.consortium.nodes if n.member == reader_bank)

    def idle_read_phase(self, seconds: float) -> None:
        assert self.reader_access is not None
        reader = Reader(self.reader_access, self.read_subject, time.monotonic() + 3.0, seconds)
        self.idle_reads, self.idle_raw, self.idle_read_errors, accounts = reader.result(
            seconds + 60
        )
        assert self.sampler is not None
        self.sampler.sample()
        self.rss_idle = dict(self.sampler.last_rss)
        print(f"[{self.name}] idle reads ({accounts} accounts) from {self.reader_node}: "
              f"{fmt_reads(self.idle_reads, self.idle_raw)}; errors {self.idle_read_errors}",
              flush=True)  # fmt: skip

    # -- a step --------------------------------------------------------------------------

    def step(self, label: str, rate: float, seconds: float, *, reads: bool = False) -> Step:
        """Send `rate` writes/s for `seconds` (open loop), wait for them, judge the step."""
        assert self.sampler is not None
        st = Step(label=label, rate=rate, seconds=seconds)
        batches = presign(self.lanes, rate, seconds, f"{self.name[0]}{len(self.steps)}x")
        heads0 = {n: o.head for n, o in self.observers.items()}
        t0 = time.monotonic() + 0.05
        reader = None
        if reads and self.reader_access is not None:
            # Reads cover the sending phase but its first second; the child gets 3 s to
            # import before the phase starts (CLOCK_MONOTONIC is the same in both).
            t0 += 3.0
            reader = Reader(self.reader_access, self.read_subject, t0 + 1.0, seconds - 1)
        self._send(st, batches, t0)
        self._collect(st, batches, t0)
        obs = self.observers[self.lanes[0].node]
        seen_blocks = list(obs.blocks.values())  # the observer thread adds to the dict
        blocks = [b for b in seen_blocks if b.number > heads0[obs.node] and b.seen >= t0]
        st.blocks = len(blocks)
        if blocks:
            st.max_txs_block = max(b.txs for b in blocks)
            st.mean_txs_block = statistics.mean(b.txs for b in blocks)
            st.max_gas_fill = max(b.gas_used / b.gas_limit for b in blocks)
        if reader is not None:
            st.reads, st.raw_reads, st.read_errors, st.read_accounts = reader.result(seconds + 60)
        self._judge(st)
        self.steps.append(st)
        print(f"[{self.name}] {fmt_step(st)}", flush=True)
        if st.never or st.errors:
            self._resync()
        return st

    def _send(self, st: Step, batches: list[Batch], t0: float) -> None:
        """The timed phase: one sending thread per bank; CPU and txpools around it."""
        assert self.sampler is not None
        me = psutil.Process()
        cpu0 = me.cpu_times()
        geth0 = self.sampler.cpu_seconds()
        psutil.cpu_percent(None)
        threads = [
            threading.Thread(target=send_lane, args=(b, t0), name=f"send-{b.lane.bank}")
            for b in batches
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        span = time.monotonic() - t0
        st.cpu_machine = psutil.cpu_percent(None)
        cpu1 = me.cpu_times()
        st.cpu_generator = 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / span
        st.cpu_geths = 100 * (self.sampler.cpu_seconds() - geth0) / span
        for node in self.consortium.nodes:
            pool = ipc_probe(self.local.layout.node(node.name).ipc, "txpool_status", [])
            if isinstance(pool, dict):
                st.txpool[node.name] = f"{int(pool['pending'], 16)}/{int(pool['queued'], 16)}"
        errors: Counter[str] = Counter()
        for b in batches:
            errors.update(b.errors)
        st.errors = dict(errors)
        st.sent = sum(len(b.items) - len(b.failed) for b in batches)
        st.max_lag = max(b.max_lag for b in batches)

    def _collect(self, st: Step, batches: list[Batch], t0: float) -> None:
        """Wait until every sent write is in a block (or DRAIN_MAX_S); latencies."""
        sent_times = [x for b in batches for x in b.sent_at if not math.isnan(x)]
        if not sent_times:
            raise SystemExit(f"[{self.name}] nothing could be sent: {st.errors}")
        first_sent, last_sent = min(sent_times), max(sent_times)
        st.send_rate = st.sent / max(1e-9, last_sent - first_sent) if st.sent > 1 else math.nan
        wanted = [(b, k) for b in batches for k in range(len(b.items)) if k not in b.failed]
        on_time = last_sent + 3 * self.period
        deadline = last_sent + DRAIN_MAX_S
        resend_at = on_time + self.period
        missing = wanted
        while time.monotonic() < deadline:
            missing = [
                (b, k) for b, k in missing if b.hashes[k] not in self.observers[b.lane.node].seen
            ]
            if not missing:
                break
            if time.monotonic() > resend_at:
                # A node whose pool overflowed (geth's default --txpool.globalslots 5120)
                # drops transactions and never asks again; the bank's own node that took them
                # keeps them (local) but does not announce them again. As a bank's client
                # would, send what is still missing through the bank's other own nodes.
                st.resent += resend(missing)
                resend_at = time.monotonic() + 5 * self.period
            time.sleep(0.2)
        latencies: list[tuple[float, float]] = []  # (sent, after t0; latency)
        for b, k in wanted:
            seen = self.observers[b.lane.node].seen.get(b.hashes[k])
            if seen is None:
                st.never += 1
                continue
            st.late += seen > on_time
            latencies.append((b.sent_at[k] - t0, seen - b.sent_at[k]))
            st.hashes.append(b.hashes[k])
        st.included = len(latencies)
        lat = [x for _, x in latencies]
        st.p50, st.p99, st.max_latency = pct(lat, 50), pct(lat, 99), max(lat, default=math.nan)
        st.p99_second_half = pct([x for o, x in latencies if o >= st.seconds / 2], 99)

    def _judge(self, st: Step) -> None:
        problems = []
        if st.errors:
            problems.append(f"{sum(st.errors.values())} send errors")
        if st.never:
            problems.append(f"{st.never} never included")
        if st.late:
            problems.append(f"{st.late} not in a block within {3 * self.period} s of the last send")
        if not st.p99_second_half <= 3 * self.period:
            problems.append(f"2nd-half p99 {st.p99_second_half:.2f} s > {3 * self.period} s")
        if st.max_lag > 0.5:
            problems.append(f"the generator fell {st.max_lag:.2f} s behind its schedule")
        st.kept_up = not problems
        st.why = "; ".join(problems)

    def _resync(self) -> None:
        for lane in self.lanes:
            w3 = http_web3(lane.url, timeout=10)
            lane.next_nonce = int(
                w3.eth.get_transaction_count(to_checksum_address(lane.address), "pending")
            )

    # -- the procedure -----------------------------------------------------------------

    def find_saturation(self, start: float, top: float, seconds: float) -> float | None:
        passed: float | None = None
        failed: float | None = None
        rate = start
        while rate <= top:
            st = self.step("ramp", rate, seconds)
            if st.kept_up:
                passed = rate
                rate = round(rate * STEP_FACTOR, 1)
            else:
                failed = rate
                break
        if passed is None or failed is None:
            return passed
        for _ in range(BISECTIONS):
            mid = round(math.sqrt(passed * failed), 1)
            if mid <= passed or mid >= failed:
                break
            st = self.step("bisect", mid, seconds)
            if st.kept_up:
                passed = mid
            else:
                failed = mid
        return passed

    def gas_per_write(self, sample: int = 200) -> None:
        hashes = [h for st in self.steps for h in st.hashes]
        if not hashes:
            return
        every = max(1, len(hashes) // sample)
        picked = hashes[::every][:sample]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
            for i, h in enumerate(picked)
        ]
        answer = requests.post(self.lanes[0].url, json=body, timeout=60).json()
        for item in answer:
            receipt = item.get("result")
            if isinstance(receipt, dict):
                self.gas.append(int(receipt["gasUsed"], 16))
                if int(receipt["status"], 16) != 1:
                    self.receipt_failures += 1

    def stop(self) -> None:
        for o in self.observers.values():
            o.stop.set()
        if self.sampler is not None:
            self.sampler.stop.set()

    def down(self) -> None:
        self.stop()
        subprocess.run(
            [POACTL, "down", "--state-dir", str(self.state)], check=False, capture_output=True
        )


# -- formatting ---------------------------------------------------------------------------


def ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1000:.1f} ms"


def sec(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f} s"


def fmt_reads(xs: Sequence[float], raw: Sequence[float]) -> str:
    if not xs:
        return "no reads"
    return (
        f"{len(xs)} SDK gets p50 {ms(pct(xs, 50))}, p99 {ms(pct(xs, 99))}, max {ms(max(xs))}; "
        f"raw eth_call p50 {ms(pct(raw, 50))}, p99 {ms(pct(raw, 99))}"
    )


def fmt_step(st: Step) -> str:
    errors = ", ".join(f"{k!r} x{v}" for k, v in st.errors.items()) or "none"
    out = (
        f"{st.label} {st.rate:g}/s for {st.seconds:g} s: sent {st.sent} "
        f"(at {st.send_rate:.1f}/s, max lag {st.max_lag * 1000:.0f} ms, errors {errors}), "
        f"included {st.included}, late {st.late}, never {st.never}, resent {st.resent}; "
        f"latency p50 {sec(st.p50)} "
        f"p99 {sec(st.p99)} (2nd half {sec(st.p99_second_half)}) max {sec(st.max_latency)}; "
        f"{st.blocks} blocks, txs/block mean {st.mean_txs_block:.0f} max {st.max_txs_block}, "
        f"max gas fill {st.max_gas_fill:.0%}; CPU machine {st.cpu_machine:.0f} %, "
        f"geths {st.cpu_geths:.0f} %, generator {st.cpu_generator:.0f} % of a core; "
        f"txpool pending/queued {st.txpool}; "
        + ("KEPT UP" if st.kept_up else f"FELL BEHIND ({st.why})")
    )
    if st.reads:
        out += (
            f"; reads ({st.read_accounts} accounts) {fmt_reads(st.reads, st.raw_reads)}, "
            f"errors {st.read_errors or 'none'}"
        )
    return out


def fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} (x{v})" for k, v in errors.items()) or "none"


def mb(n: float) -> str:
    return f"{n / 2**20:.0f}"


# -- main -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    run: Run
    saturation: float | None = None
    measured: dict[int, Step] = field(default_factory=dict)
    error: str = ""  # why the configuration's run stopped early


def measure(out: Outcome, args: argparse.Namespace) -> None:
    run = out.run
    run.up()
    run.idle_read_phase(args.idle_read_seconds)
    out.saturation = run.find_saturation(args.start_rate, args.max_rate, args.step_seconds)
    print(f"[{run.name}] saturation: {out.saturation} writes/s", flush=True)
    if out.saturation:
        for share in (50, 70, 90):
            rate = round(out.saturation * share / 100, 1)
            out.measured[share] = run.step(f"{share} %", rate, args.measure_seconds, reads=True)
    run.gas_per_write()
    assert run.sampler is not None
    run.sampler.sample()


def given(r: Run) -> str:
    """What the tuning section gives every geth: its flags and its environment."""
    tuning = r.consortium.settings.tuning
    env = "".join(f" and {k}={v} in its environment" for k, v in tuning.environment().items())
    return f"`{' '.join(tuning.flags())}`{env}"


def section(outcomes: list[Outcome], args: argparse.Namespace, command: str) -> str:
    lines = [
        BEGIN,
        "## Credit-record load: open-loop writes, reads under load, RSS, gas",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}; "
        "default consortium (2 banks x (2 validators + 1 spare) = 6 agents / 6 geth nodes, "
        "4 signers, period 2 s, local store and vaults), each configuration on a new state "
        f"dir through the real CLI. Command: `{command}`.",
        "",
        "Load: `report` transactions of the CreditRegistry, each a new tradeline of a new "
        "subject, signed locally with bank-a's and bank-b's transaction keys (alternating) "
        "and sent raw to each bank's own first node; all transactions of a step are signed "
        "before it ("
        + (
            "coincurve/libsecp256k1 + rlp, byte-identical to eth_account"
            if coincurve
            else "eth_account; coincurve not installed"
        )
        + "), then sent "
        "open loop (transaction i due at i / rate) in one JSON-RPC batch per bank every "
        f"{TICK_S * 1000:.0f} ms. Latency: send -> the transaction seen in a block on the "
        f"submitting bank's node (head polled every {POLL_S * 1000:.0f} ms). A step keeps up "
        "when every write is in a block within 3 periods of the last send and the p99 of its "
        "second half is <= 3 periods; the rate grows x1.5 from "
        f"{args.start_rate:g}/s, then {BISECTIONS} bisection steps; saturation = the highest "
        "rate that kept up. Reads: Bank B's SDK `CreditClient.get` (block number + "
        "`tradelinesOf`, 3 tradelines from both banks) from its own node at "
        f"{READ_RATE:.0f}/s in a separate process.",
        "",
    ]
    for o in outcomes:
        r = o.run
        what = (
            f"gas_limit {r.gas_limit:,} in the consortium file (genesis + --miner.gaslimit), "
            + (
                f"`tuning: {json.dumps(r.tuning)}` (every geth gets {given(r)})"
                if r.tuning
                else "no `tuning` section (geth's default cache, memory limit, recommit and txpool)"
            )
        )
        if r.name == "baseline":
            what += ": geth's private-network documentation settings"
        lines += [
            f"### {r.name}: {what}",
            "",
            f"`poactl up` {r.up_seconds:.1f} s; signers held by "
            + ", ".join(sorted(r.signers))
            + f"; writes sent to {', '.join(f'{ln.bank} -> {ln.node}' for ln in r.lanes)}; "
            f"reads from {r.reader_node}.",
            "",
            "| step | rate/s | sent | send rate/s | in time | p50 | p99 | p99 2nd half | max | "
            "blocks (step + drain) | txs/block mean/max | gas fill max | CPU machine | "
            "CPU geths (1 core=100) | CPU generator | txpool pend/queued at end | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for st in r.steps:
            pool = ", ".join(f"{n} {v}" for n, v in st.txpool.items())
            verdict = "kept up" if st.kept_up else f"fell behind: {st.why}"
            lines.append(
                f"| {st.label} | {st.rate:g} | {st.sent} | {st.send_rate:.1f} | "
                f"{st.included - st.late}/{st.sent} | {sec(st.p50)} | {sec(st.p99)} | "
                f"{sec(st.p99_second_half)} | {sec(st.max_latency)} | {st.blocks} | "
                f"{st.mean_txs_block:.0f}/{st.max_txs_block} | {st.max_gas_fill:.0%} | "
                f"{st.cpu_machine:.0f} % | {st.cpu_geths:.0f} % | {st.cpu_generator:.0f} % | "
                f"{pool} | {verdict} |"
            )
        if o.error:
            lines += ["", f"**This configuration's run stopped early: {o.error}**"]
        lines += ["", f"Saturation: **{o.saturation if o.saturation else 'not found'} writes/s**."]
        if r.gas:
            per_block = r.gas_limit // round(statistics.mean(r.gas))
            lines.append(
                f"The block gas limit alone caps this configuration at {per_block} writes per "
                f"block = {per_block / r.period:.0f} writes/s "
                f"({r.gas_limit:,} / {statistics.mean(r.gas):,.0f} gas per write)."
            )
        if o.measured:
            lines += ["", "| load | rate/s | write p50 | write p99 | SDK get p50 | get p99 | "
                      "get max | raw eth_call p50 | eth_call p99 | read errors |",
                      "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
            lines.append(
                f"| idle (no writes) | 0 | - | - | {ms(pct(r.idle_reads, 50))} | "
                f"{ms(pct(r.idle_reads, 99))} | {ms(max(r.idle_reads, default=math.nan))} | "
                f"{ms(pct(r.idle_raw, 50))} | {ms(pct(r.idle_raw, 99))} | "
                f"{fmt_errors(r.idle_read_errors)} |"
            )
            for share, st in o.measured.items():
                lines.append(
                    f"| {share} % of saturation | {st.rate:g} | {sec(st.p50)} | {sec(st.p99)} | "
                    f"{ms(pct(st.reads, 50))} | {ms(pct(st.reads, 99))} | "
                    f"{ms(max(st.reads, default=math.nan))} | {ms(pct(st.raw_reads, 50))} | "
                    f"{ms(pct(st.raw_reads, 99))} | {fmt_errors(st.read_errors)} |"
                )
        sampler = r.sampler
        lines += [
            "",
            "RSS per geth node, MB (idle after `up` / max during the run / at the end): "
            + "; ".join(
                f"{n}{' (signer)' if n in r.signers else ''} {mb(r.rss_idle.get(n, 0))} / "
                f"{mb(sampler.max_rss[n])} / {mb(sampler.last_rss[n])}"
                for n in sampler.max_rss
            )
            + "."
            if sampler
            else "RSS: not sampled.",
            "",
            (
                f"Gas per write (receipts of {len(r.gas)} sampled writes): mean "
                f"{statistics.mean(r.gas):,.0f}, min {min(r.gas):,}, max {max(r.gas):,}; "
                f"{r.receipt_failures} reverted; gas limit per transaction "
                f"{r.lanes[0].signer.gas:,}. Reorgs seen by the observers: "
                f"{sum(o.reorgs for o in r.observers.values())}."
                if r.gas
                else "No receipts sampled."
            ),
            "",
        ]
    by = {o.run.name: o for o in outcomes}
    if "tuned" in by and "baseline" in by:
        a, b = by["tuned"].saturation, by["baseline"].saturation
        ratio = f"{a / b:.2f}" if a and b else "n/a"
        lines += [
            f"Ratio tuned / baseline (geth private-network settings) saturation: **{ratio}** "
            f"({a} / {b} writes/s).",
            "",
        ]
    lines += goals(outcomes)
    lines.append(END)
    return "\n".join(lines)


def goals(outcomes: list[Outcome]) -> list[str]:
    main = next((o for o in outcomes if o.run.name == "tuned"), outcomes[0])
    r = main.run
    sat = main.saturation or 0.0
    st70 = main.measured.get(70)
    reads = [x for st in main.measured.values() for x in st.reads]
    rss = max(r.sampler.max_rss.values()) if r.sampler else math.inf

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**NOT met**"

    return [
        f"Goals (issue 5), {r.name} configuration:",
        "",
        f"- >= {GOAL_WRITES:,.0f} writes/s sustained: saturation {sat:g} writes/s: "
        f"{verdict(sat >= GOAL_WRITES)}.",
        f"- p99 <= {GOAL_P99_70_S} s at 70 %: "
        + (f"{sec(st70.p99)} at {st70.rate:g}/s: {verdict(st70.p99 <= GOAL_P99_70_S)}."
           if st70 else "not measured: **NOT met**."),
        f"- reads p99 <= {GOAL_READ_P99_MS:.0f} ms under write load (50/70/90 % together): "
        + (f"{ms(pct(reads, 99))}: {verdict(pct(reads, 99) * 1000 <= GOAL_READ_P99_MS)}."
           if reads else "not measured: **NOT met**."),
        f"- <= {GOAL_RSS_MB:.0f} MB RSS per node: max {mb(rss)} MB: "
        f"{verdict(rss / 2**20 <= GOAL_RSS_MB)}.",
        "",
    ]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--configs",
        default="tuned,baseline",
        help="tuned: --gas-limit and --tuning; baseline: 30M gas, geth's defaults",
    )
    parser.add_argument("--gas-limit", type=int, default=500_000_000, help="tuned gas_limit")
    parser.add_argument(
        "--tuning",
        type=json.loads,
        default=TUNED,
        help=f"tuned: the consortium file's tuning section, as JSON [{json.dumps(TUNED)}]",
    )
    parser.add_argument("--start-rate", type=float, default=50.0)
    parser.add_argument("--max-rate", type=float, default=2000.0)
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--measure-seconds", type=float, default=30.0)
    parser.add_argument("--idle-read-seconds", type=float, default=5.0)
    parser.add_argument(
        "--record", action="store_true", help="rewrite this benchmark's section of the doc"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    flags = [f"--configs {args.configs}", f"--gas-limit {args.gas_limit}",
             f"--start-rate {args.start_rate:g}", f"--max-rate {args.max_rate:g}",
             f"--step-seconds {args.step_seconds:g}",
             f"--measure-seconds {args.measure_seconds:g}"]  # fmt: skip
    if args.tuning != TUNED:
        flags.append(f"--tuning '{json.dumps(args.tuning)}'")
    command = " ".join(
        [".venv/bin/python scripts/bench_load.py", *flags, *(["--record"] if args.record else [])]
    )
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="poa-load-", dir="/tmp"))
    outcomes: list[Outcome] = []
    runs: list[Run] = []
    durations: list[float] = []
    try:
        for i, name in enumerate(args.configs.split(",")):
            if name not in ("tuned", "baseline"):
                raise SystemExit(f"unknown configuration {name!r}: tuned or baseline")
            if name == "baseline":
                run = Run(name, BASELINE_GAS, work, 42000 + 500 * i)
            else:
                run = Run(name, args.gas_limit, work, 42000 + 500 * i, tuning=args.tuning)
            runs.append(run)
            t_run = time.monotonic()
            outcome = Outcome(run)
            outcomes.append(outcome)
            try:
                measure(outcome, args)
            except Exception as e:  # shown in the doc; the other configurations still run
                traceback.print_exc()
                outcome.error = f"{type(e).__name__}: {e}"[:300]
            finally:
                run.down()
                durations.append(time.monotonic() - t_run)
                print(f"[{name}] done in {durations[-1]:.0f} s", flush=True)
    finally:
        for run in runs:
            run.down()
        shutil.rmtree(work, ignore_errors=True)
    text = section(outcomes, args, command)
    print(text)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.record:
        record(BEGIN, END, text)
    else:
        print("(not recorded: pass --record to rewrite the section in docs/benchmarks.md)")


if __name__ == "__main__":
    main()
