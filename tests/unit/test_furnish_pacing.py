"""Furnishing paced by the base fee (`credit.furnish._free_gas`): while blocks run over
EIP-1559's target the base fee climbs 12.5 % a block, and a file sent as fast as blocks
fill would soon cost more per batch than geth's fee cap accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from orchestrator.credit.furnish import FEE_PAUSE_WEI, _free_gas

GWEI = 10**9


@dataclass
class Sender:
    base: int

    def base_fee(self) -> int:
        return self.base


@dataclass
class Client:
    sender: Sender


@dataclass
class Pipe:
    outstanding: int
    gas_in_flight: int


def free(base: int, outstanding: int, in_flight: int, budget: int = 300) -> int:
    return _free_gas(cast(Any, Client(Sender(base))), cast(Any, Pipe(outstanding, in_flight)),
                     budget)  # fmt: skip


def test_sending_waits_while_the_base_fee_is_high_and_batches_are_in_flight() -> None:
    assert free(GWEI, 2, 100) == 200  # the budget less what is in flight
    assert free(FEE_PAUSE_WEI + 1, 2, 100) == 0  # blocks over the target: let them drain
    assert free(FEE_PAUSE_WEI + 1, 0, 0) == 300  # nothing in flight: always progress


def test_the_pause_leaves_room_under_geths_fee_cap() -> None:
    """A batch's fee at the pause (2 x base + 1 gwei tip, ~3.1M gas) stays well under the
    1 ether geth accepts by default (--rpc.txfeecap)."""
    assert 3_100_000 * (2 * FEE_PAUSE_WEI + GWEI) < 10**18 // 10
