"""How many trials each scenario gets: a short run for CI, the issue's counts on demand
(`POACTL_FAULTS=full`, or `python -m scripts.bench.faults --size full`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    kill9: int
    freeze: int  # the node alone frozen
    freeze_stalled: int  # with a node of the other bank frozen too: the chain stalls
    freeze_seconds: tuple[float, ...]  # cycled through, each past the 15 s lease
    partition_banks: int  # 2 | 2
    partition_node: int  # 3 | 1
    partition_in_bank: int  # a node from its own bank
    partition_three: int  # one bank of three from the other two
    partition_seconds: float
    wan_latencies_ms: tuple[int, ...]
    wan_rate_kb: int
    wan_seconds: float
    store: int
    store_seconds: float
    vault: int
    disk: int
    crash: int


CI = Sizes(
    kill9=1, freeze=0, freeze_stalled=1, freeze_seconds=(20,), partition_banks=1,
    partition_node=1, partition_in_bank=1, partition_three=1, partition_seconds=20,
    wan_latencies_ms=(200,), wan_rate_kb=256, wan_seconds=30, store=1, store_seconds=25,
    vault=1, disk=1, crash=1,
)  # fmt: skip
FULL = Sizes(
    kill9=50, freeze=14, freeze_stalled=6, freeze_seconds=(20, 30, 45, 60),
    partition_banks=10, partition_node=10, partition_in_bank=10, partition_three=5,
    partition_seconds=30, wan_latencies_ms=(100, 200, 300), wan_rate_kb=256, wan_seconds=120,
    store=5, store_seconds=30, vault=3, disk=3, crash=3,
)  # fmt: skip
