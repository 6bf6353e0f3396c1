"""Benchmark: seconds from a governance decision to Clique's signers following it.

On the default consortium (two banks, two validators each, four Clique signers), bank-a's
admin takes one of its own validators out on the Governance contract, and puts it back.
Each trial measures, from the block that holds the decision (its timestamp) to the first
moment a poll sees it: the signer dropped from `clique_getSigners`, and, after the
re-add, the signer back in the set and sealing a block again. The sealing agents carry
each decision with `clique_propose` votes; Clique passes a change once more than half of
the signers have sealed a block with their vote. Prints the figures; with `--record` it
rewrites its section of docs/benchmarks.md.

    .venv/bin/python -m scripts.bench.governance [--trials 5] [--record]
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from orchestrator.geth.ipc import ipc_request
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import bank_governance

from .common import bench_parser, default_consortium, geth_version, machine, publish, summary

BEGIN, END = "<!-- bench_governance:begin -->", "<!-- bench_governance:end -->"
POLL_S = 0.1
TIMEOUT_S = 120.0


def _ipc(local: LocalConsortium, method: str, params: list[object] | None = None) -> Any:
    return ipc_request(local.layout.node("bank-b-1").ipc, method, params or [])


def _block_time(local: LocalConsortium, number: int) -> int:
    return int(_ipc(local, "eth_getBlockByNumber", [hex(number), False])["timestamp"], 16)


def _seconds_until(since: int, done: Callable[[], bool]) -> float:
    """Wall-clock seconds from block timestamp `since` until `done()` holds."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"no change after {TIMEOUT_S} s")
        time.sleep(POLL_S)
    return time.time() - since


def _signers(local: LocalConsortium) -> list[str]:
    return [str(s).lower() for s in _ipc(local, "clique_getSigners")]


def _sealed_since(local: LocalConsortium, address: str, block: int) -> bool:
    head = int(str(_ipc(local, "eth_blockNumber")), 16)
    return any(
        str(_ipc(local, "clique_getSigner", [hex(n)])).lower() == address
        for n in range(block + 1, head + 1)
    )


def trial(local: LocalConsortium, validator: str) -> tuple[float, float]:
    gov = bank_governance(local, "bank-a")
    address = validator.lower()
    out = gov.remove_validators([validator]).wait(timeout=30)
    stamp = _block_time(local, out.block_number)
    dropped = _seconds_until(stamp, lambda: address not in _signers(local))
    back = gov.add_validators([validator]).wait(timeout=30)
    stamp = _block_time(local, back.block_number)
    sealing = _seconds_until(
        stamp,
        lambda: address in _signers(local) and _sealed_since(local, address, back.block_number),
    )  # fmt: skip
    return dropped, sealing


def main() -> None:
    parser = bench_parser(__spec__.name, __doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    drops, adds = [], []
    with default_consortium(43000) as local:
        network = local.network()
        assert network is not None
        validator = network.members["bank-a"].signers[1]
        for i in range(args.trials):
            dropped, sealing = trial(local, validator)
            drops.append(dropped)
            adds.append(sealing)
            print(f"trial {i + 1}: dropped after {dropped:.1f} s, back and sealing after "
                  f"{sealing:.1f} s", flush=True)  # fmt: skip
    section = "\n".join([
        BEGIN,
        "## Governance: from a decision on the contract to Clique's signers",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; geth {geth_version()}, "
        "default consortium (2 banks x 2 validators, 4 signers, period 2 s), "
        f"{args.trials} trials. Command: `.venv/bin/python -m scripts.bench.governance "
        f"--trials {args.trials} --record`.",
        "",
        "| change (bank-a's admin, on its own validator) | seconds from the decision's block |",
        "|---|---|",
        f"| `removeValidators`: the signer leaves `clique_getSigners` | {summary(drops)} |",
        f"| `addValidators`: the signer is back and has sealed a block | {summary(adds)} |",
        "",
        "Clique passes a change once more than half of the signers (3 of 4 to drop, 2 of",
        "3 to add back) have each sealed a block carrying their vote, and a signer seals",
        "at most one block in three, so a change takes a few rounds of 2 s blocks. The",
        "issue's figure, from the last approving vote to a *joining* bank's validators",
        "sealing, is the next section's (`scripts/bench/join.py`).",
        END,
    ])  # fmt: skip
    publish(BEGIN, END, section, record_it=args.record)


if __name__ == "__main__":
    main()
