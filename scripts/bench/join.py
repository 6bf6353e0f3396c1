"""Benchmark: seconds from the last approving vote to a joining bank's validator sealing.

Each trial starts the shipped default consortium (two banks, two validators each, four
Clique signers, balancers) on free ports, and a third bank joins it from its own state
dir with one validator (`local.join`, as `poactl join`): it syncs from bank-a's
published consortium data, bank-a proposes it (`members propose`), bank-b approves, the
new bank's leader seats its validator on the Governance contract, the sealing agents
vote it into Clique, and it seals. Measured from the approving vote's block timestamp
to the first poll that sees a block sealed by the new validator, with the seat (its
`addValidators` on the contract) on the way. Prints the figures; with `--record` it
rewrites its section of docs/benchmarks.md.

    .venv/bin/python -m scripts.bench.join [--trials 5] [--record]
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from orchestrator.geth.ipc import ipc_request
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import bank_governance, read_joining_member
from orchestrator.local.join import join

from .common import (
    bench_parser,
    default_consortium,
    geth_version,
    machine,
    move_ports,
    publish,
    summary,
)

BEGIN, END = "<!-- bench_join:begin -->", "<!-- bench_join:end -->"
GAS_MONEY = 10**20
POLL_S = 0.1
TIMEOUT_S = 180.0


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def trial(founders: LocalConsortium, base_port: int) -> tuple[float, float, float]:
    """(seconds to join and sync, approval -> seated, approval -> first sealed block)."""
    work = Path(tempfile.mkdtemp(prefix="poa-bench-join-", dir="/tmp"))
    config: dict[str, Any] = {"members": {"bank-c": {"validators": 1, "spares": 0}}}
    move_ports(config, base_port)
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    joiner = LocalConsortium(work / "state")
    try:
        t0 = time.monotonic()
        joined = join(joiner, url=founders.data_url("bank-a"), member="bank-c",
                      config=work / "c.yaml", timeout=180)  # fmt: skip
        synced = time.monotonic() - t0
        info = read_joining_member(joined.data_url, "bank-c")
        a, b = bank_governance(founders, "bank-a"), bank_governance(founders, "bank-b")
        for account in (info.admin, info.tx_account):
            a.fund(account, GAS_MONEY).wait(timeout=60)
        a.propose_add(info.admin, "bank-c").wait(timeout=60)
        _wait(lambda: any(p.name == "bank-c" for p in b.proposals(open_only=True)), "bank-b")
        (proposal,) = [p for p in b.proposals(open_only=True) if p.name == "bank-c"]
        approved = b.vote(proposal.id, approve=True).wait(timeout=60)
        ipc = founders.layout.node("bank-b-1").ipc
        block = ipc_request(ipc, "eth_getBlockByNumber", [hex(approved.block_number), False])
        stamp = int(block["timestamp"], 16)
        signer = info.signers[0]
        _wait(lambda: signer in b.validators(), "the validator to be seated")
        seated = time.time() - stamp

        def sealed() -> bool:
            head = int(ipc_request(ipc, "eth_blockNumber"), 16)
            return any(
                str(ipc_request(ipc, "clique_getSigner", [hex(n)])).lower() == signer.lower()
                for n in range(approved.block_number + 1, head + 1)
            )

        _wait(sealed, "a block sealed by the new validator")
        return synced, seated, time.time() - stamp
    finally:
        if joiner.exists:
            joiner.down()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = bench_parser(__spec__.name, __doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    syncs, seats, seals = [], [], []
    for i in range(args.trials):
        with default_consortium(43000) as founders:
            synced, seated, sealed = trial(founders, 45000)
        syncs.append(synced)
        seats.append(seated)
        seals.append(sealed)
        print(f"trial {i + 1}: joined and synced in {synced:.1f} s; from the approving vote: "
              f"seated {seated:.1f} s, sealing {sealed:.1f} s", flush=True)  # fmt: skip
    section = "\n".join([
        BEGIN,
        "## Joining: from the last approving vote to the new bank's validator sealing",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}, "
        "default consortium (2 banks x 2 validators, 4 signers, period 2 s) joined by a",
        f"third bank with 1 validator from its own state dir; {args.trials} trials, each on",
        "a fresh consortium. Command: `.venv/bin/python -m scripts.bench.join "
        f"--trials {args.trials} --record`.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `join`: state, keys, agents, synced as a follower | {summary(syncs)} |",
        f"| approving vote's block -> the new bank's leader has seated its validator | "
        f"{summary(seats)} |",
        f"| approving vote's block -> a block sealed by the new validator | {summary(seals)} |",
        "",
        "The new bank's leader checks for its admission once a block period and seats its",
        "validator in one transaction (a block); Clique then adds the signer once more than",
        "half of the four signers (3) have each sealed a block carrying their vote, and the",
        "new signer seals in its turn (at most one block in five, with Clique's",
        "recently-signed rule).",
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
