"""Furnishing paced by the base fee (`credit.furnish._fee_pause`): while blocks run over
EIP-1559's target the base fee climbs 12.5 % a block, and a file sent as fast as blocks
fill would soon cost more per batch than geth's fee cap accepts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from orchestrator.credit.furnish import FEE_PAUSE_POLL, FEE_PAUSE_WEI, _fee_pause

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


def paused(base: int, outstanding: int) -> bool:
    return _fee_pause(cast(Any, Client(Sender(base))), cast(Any, Pipe(outstanding)))


def test_sending_waits_while_the_base_fee_is_high_even_with_nothing_in_flight() -> None:
    assert not paused(GWEI, 2)
    assert paused(FEE_PAUSE_WEI + 1, 2)  # blocks over the target: let them drain
    started = time.monotonic()
    # Nothing in flight: sending anyway kept blocks full and the fee climbing (the 30M
    # baseline hit geth's fee cap so); it waits for the fee to fall instead.
    assert paused(FEE_PAUSE_WEI + 1, 0)
    assert time.monotonic() - started >= FEE_PAUSE_POLL * 0.9


def test_the_pause_leaves_room_under_geths_fee_cap() -> None:
    """A batch's fee at the pause (2 x base + 1 gwei tip, ~3.1M gas) stays well under the
    1 ether geth accepts by default (--rpc.txfeecap)."""
    assert 3_100_000 * (2 * FEE_PAUSE_WEI + GWEI) < 10**18 // 10
