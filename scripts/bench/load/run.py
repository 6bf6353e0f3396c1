"""One run (a configuration and a write mode) on its own consortium and the procedure over
it: `poactl up` through the real CLI, the banks' lanes, observers and sampler; a step
(send, collect, judge); the search for saturation; gas per record; `measure`, the whole
procedure, into an `Outcome`. Rates are records/s; a transaction carries K records."""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml
from eth_account import Account
from eth_utils.address import to_checksum_address

from orchestrator.config import NodeSpec, parse_config
from orchestrator.credit.access import BankAccess
from orchestrator.credit.client import CreditClient
from orchestrator.credit.contract import registry_contract
from orchestrator.credit.demo import demo_record
from orchestrator.credit.deployment import ConsortiumResolver
from orchestrator.credit.pseudonym import pseudonym
from orchestrator.credit.records import tradeline_key
from orchestrator.errors import StateError
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_probe
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.registry import local_resolver

from ..common import POACTL, ROOT, geth_pids, move_ports, pct, poactl_up
from .signing import (
    Batch,
    Lane,
    Signer,
    encode_writes,
    presign,
    pseudonym_fast,
    subject_calldata,
    subject_offsets,
)
from .step import Step, fmt_reads, fmt_step
from .traffic import Observer, Reader, Sampler, resend, send_lane

GAS_MARGIN = 1.25  # as the SDK: a margin over eth_estimateGas
UP_TIMEOUT_S = 180.0
READ_TRADELINES = 10  # of the subject Bank B reads
SEED_VISIBLE_SECONDS = 30.0  # for the seeded tradelines to show on the reader's node
DRAIN_MAX_S = 120.0  # wait this long at most for a backlog to clear between steps
STEP_FACTOR = 1.5
BISECTIONS = 2


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
    """One configuration's consortium written to in one mode (`config/mode`): its lanes,
    observers and sampler. `k`: records per transaction (1 for `single`)."""

    def __init__(
        self,
        config: str,
        mode: str,
        *,
        k: int,
        work: Path,
        port_base: int,
        override: dict[str, Any] | None = None,
    ) -> None:
        """`override`: merged into the shipped consortium file (the baseline's 30M gas and no
        tuning; nothing for the default)."""
        self.config, self.mode, self.k = config, mode, 1 if mode == "single" else k
        self.name = f"{config}/{mode}"
        self.state = work / f"state-{config}-{mode}"
        self.config_file = work / f"consortium-{config}-{mode}.yaml"
        shipped = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
        shipped.update(override or {})
        move_ports(shipped, port_base)
        self.config_file.write_text(yaml.safe_dump(shipped, sort_keys=False))
        self.consortium = parse_config(self.config_file.read_text(), source=str(self.config_file))
        self.period = self.consortium.settings.block_period
        self.gas_limit = self.consortium.settings.gas_limit
        self.tuning = self.consortium.settings.tuning.model_dump(exclude_none=True)
        self.lanes: list[Lane] = []
        self.observers: dict[str, Observer] = {}
        self.sampler: Sampler | None = None
        self.local = LocalConsortium(self.state)
        self.up_seconds = math.nan
        self.signers: dict[str, str] = {}
        self.steps: list[Step] = []
        self.reader_access: BankAccess | None = None
        self.read_subject = b""
        self.read_keys: list[bytes] = []
        self.idle_reads: list[float] = []
        self.idle_raw: list[float] = []
        self.idle_read_errors: dict[str, int] = {}
        self.gas: list[int] = []  # gasUsed of sampled transactions (of k records each)
        self.receipt_failures = 0
        self.rss_idle: dict[str, int] = {}
        self.reader_node = ""
        self.direct: dict[str, BankAccess] = {}  # bank -> its access at its first node

    # -- set-up ------------------------------------------------------------------------

    def up(self) -> None:
        self.up_seconds = poactl_up(
            self.config_file, self.state, label=self.name, timeout=UP_TIMEOUT_S
        )
        print(f"[{self.name}] poactl up: {self.up_seconds:.1f} s", flush=True)
        self.signers = self.local.signers()
        pids = geth_pids(self.local, [n.name for n in self.consortium.nodes])
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
            # The resolver names the bank's balancer when the consortium has one (the
            # default file does): the benchmark writes and reads at the bank's first node
            # (not its read index: scripts/bench/reads measures reads from the index).
            node = first[bank]
            access = replace(
                resolver.resolve(bank), rpc_url=node.rpc_url, rpc_token=None, index_url=None
            )
            self.direct[bank] = access
            lane = self._lane(bank, node.name, access)
            lane.others = [
                n.rpc_url for n in self.consortium.nodes if n.member == bank and n is not node
            ]
            self.lanes.append(lane)
            self.observers[node.name] = Observer(node.name, node.rpc_url)
        for o in self.observers.values():
            o.start()
        self._seed_reads()

    def _lane(self, bank: str, node: str, access: BankAccess) -> Lane:
        w3 = http_web3(access.rpc_url, timeout=10)
        address = Account.from_key(access.account_key.value).address
        furnisher = CreditClient.of(access).furnisher  # the bank: its admin in Governance
        if int(furnisher, 16) == 0:
            raise SystemExit(f"{bank}'s account {address} writes for no member bank")
        contract = registry_contract(w3, access.registry)
        record = demo_record()  # one account reference per lane; every record a new subject
        secret = access.pseudonym_secret

        def calldata(tag: str) -> bytes:
            subjects = [pseudonym(secret, f"BENCH{tag}{j}") for j in range(self.k)]
            return encode_writes(contract, self.mode, furnisher, record, subjects)

        offsets = subject_offsets(self.mode, self.k)
        template = calldata("T")
        sample = [pseudonym(secret, f"BENCHS{j}") for j in range(self.k)]
        if subject_calldata(template, offsets, sample) != calldata("S"):
            raise SystemExit("the calldata template does not match the ABI encoding")
        sample_id = f"Bt0x{bank.upper().replace('-', '')}17"
        if pseudonym_fast(secret.value, sample_id) != pseudonym(secret, sample_id):
            raise SystemExit("the fast pseudonym does not match the SDK's")
        call = {"from": address, "to": access.registry, "data": "0x" + template.hex()}
        gas = int(int(w3.eth.estimate_gas(call)) * GAS_MARGIN)  # type: ignore[arg-type]
        signer = Signer(access.account_key.value, int(w3.eth.chain_id), access.registry, gas)
        signer.check_against_eth_account(template)
        nonce = int(w3.eth.get_transaction_count(address, "pending"))
        print(f"[{self.name}] {bank}: account {address} for furnisher {furnisher} via {node} "
              f"({access.rpc_url}), {self.k} records per transaction ({len(template)} bytes), "
              f"gas limit per transaction {gas} (estimate x {GAS_MARGIN}), max fee "
              f"{signer.max_fee / 1e9:g} gwei, nonce {nonce}", flush=True)  # fmt: skip
        return Lane(bank, node, access.rpc_url, address, signer, template, offsets,
                    secret.value, nonce)  # fmt: skip

    def _seed_reads(self) -> None:
        """The subject Bank B reads: ten tradelines, five from each bank (issue 14's read
        goal is for a subject with ten), written through the SDK (and waited for) before any
        load; their keys for `states`."""
        banks = self.consortium.members()
        reader_bank = banks[-1]
        pending = []
        client: CreditClient | None = None
        per_bank = READ_TRADELINES // 2
        for bank, tag in ((banks[0], "A"), (reader_bank, "B")):
            refs = [f"READ-{tag}{i}" for i in range(per_bank)]
            client = CreditClient.of(self.direct[bank])
            subject = client.subject("BENCHREADER1")
            for ref in refs:
                record = dataclasses.replace(demo_record(), account_ref=ref)
                pending.append(client.report(subject, record))
                self.read_keys.append(tradeline_key(subject, client.furnisher, ref))
            self.read_subject = subject
        for p in pending:
            p.wait(timeout=60)
        assert client is not None
        # Each write was waited for on its own bank's node; the reader's node may import
        # the last block a moment later.
        deadline = time.monotonic() + SEED_VISIBLE_SECONDS
        while True:
            found = client.states(self.read_keys)
            if all(state.version for state in found):
                break
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the read subject's tradelines are not all on the reader's node after "
                    f"{SEED_VISIBLE_SECONDS:.0f} s: {found}"
                )
            time.sleep(0.5)
        for lane in self.lanes:  # the SDK used the banks' accounts: continue after it
            w3 = http_web3(lane.url, timeout=10)
            lane.next_nonce = int(
                w3.eth.get_transaction_count(to_checksum_address(lane.address), "pending")
            )
        self.reader_access = self.direct[reader_bank]
        self.reader_node = next(ln.node for ln in self.lanes if ln.bank == reader_bank)

    def idle_read_phase(self, seconds: float) -> None:
        assert self.reader_access is not None
        reader = Reader(
            self.reader_access, self.read_subject, self.read_keys, time.monotonic() + 3.0, seconds
        )
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
        """Send `rate` records/s for `seconds` (open loop), wait for them, judge the step."""
        assert self.sampler is not None
        st = Step(label=label, rate=rate, seconds=seconds, k=self.k)
        batches = presign(self.lanes, rate, seconds, f"{self.name[0]}{len(self.steps)}x")
        heads0 = {n: o.head for n, o in self.observers.items()}
        t0 = time.monotonic() + 0.05
        reader = None
        if reads and self.reader_access is not None:
            # Reads cover the sending phase but its first second; the child gets 3 s to
            # import before the phase starts (CLOCK_MONOTONIC is the same in both).
            t0 += 3.0
            reader = Reader(
                self.reader_access, self.read_subject, self.read_keys, t0 + 1.0, seconds - 1
            )
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
        """Wait until every sent transaction is in a block (or DRAIN_MAX_S); latencies."""
        sent_times = [x for b in batches for x in b.sent_at if not math.isnan(x)]
        if not sent_times:
            raise SystemExit(f"[{self.name}] nothing could be sent: {st.errors}")
        first_sent, last_sent = min(sent_times), max(sent_times)
        span = max(1e-9, last_sent - first_sent)
        st.send_rate = (st.sent - 1) * st.k / span if st.sent > 1 else math.nan
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

    def gas_per_transaction(self, sample: int = 200) -> None:
        """gasUsed of up to `sample` transactions spread over the steps (per record: / k)."""
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


@dataclass
class Outcome:
    run: Run
    saturation: float | None = None
    measured: dict[int, Step] = field(default_factory=dict)
    error: str = ""  # why the run stopped early


def measure(out: Outcome, args: argparse.Namespace) -> None:
    run = out.run
    run.up()
    run.idle_read_phase(args.idle_read_seconds)
    start = args.start_rate_batch if run.mode == "batch" else args.start_rate_single
    out.saturation = run.find_saturation(start, args.max_rate, args.step_seconds)
    print(f"[{run.name}] saturation: {out.saturation} records/s", flush=True)
    if out.saturation:
        for share in (50, 70, 90):
            rate = round(out.saturation * share / 100, 1)
            out.measured[share] = run.step(f"{share} %", rate, args.measure_seconds, reads=True)
    run.gas_per_transaction()
    assert run.sampler is not None
    run.sampler.sample()
