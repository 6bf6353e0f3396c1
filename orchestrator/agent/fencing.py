"""The fencing arithmetic: how long before its identity lease could expire an agent stops
sealing, and whether a lease is long enough to leave room for that; and what an agent
that stops on purpose leaves behind for the identity's next holder.

Two nodes must never seal with one key. An agent counts its lease from when it *sent*
the last renewal, so its view of the expiry is never later than the store's; it stops
sealing `fence_margin` seconds before that, because geth may still publish a block it
signed just before being told to stop.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from orchestrator.errors import ConfigError, PoaError
from orchestrator.geth.ipc import ipc_probe
from orchestrator.network.leases import LeaseKeeper

log = logging.getLogger(__name__)


def in_flight_seconds(block_period: int, signers: int) -> float:
    """How long after geth signed a block it may still publish it: geth signs before
    Clique's delay, which is up to one period plus the out-of-turn wiggle (500 ms per
    signers/2+1), and a second more for the block to land in its chain."""
    return block_period + 0.5 * (signers // 2 + 1) + 1.0


def fence_margin(block_period: int, signers: int) -> float:
    """How long before its lease could expire an agent stops sealing: a block in flight,
    plus 2 s for the fence itself and the clocks of two processes."""
    return in_flight_seconds(block_period, signers) + 2.0


def check_lease_fits(block_period: int, signers: int, lease_seconds: int) -> None:
    """The fence must leave room for at least one renewal (due after a third of the
    lease) plus a second try; else an agent would fence right after every acquire."""
    margin = fence_margin(block_period, signers)
    if margin > lease_seconds * 2 / 3 - 1:
        needed = math.ceil(1.5 * (margin + 1))
        raise ConfigError(
            f"a {lease_seconds}s lease is too short for {block_period}s blocks and "
            f"{signers} signers: an agent must stop sealing {margin:.1f}s before its lease "
            "can expire, which leaves no time to renew it",
            obj="supervision.lease_seconds",
            hint=f"set lease_seconds to at least {needed}"
            + (" (leases last at most 60 s: shorten block_period)" if needed > 60 else ""),
        )


def settle_signatures(keeper: LeaseKeeper, ipc: Path, in_flight: float) -> None:
    """An agent that stops on purpose, with its signer already refusing: wait until the
    block geth may have signed last lands in this node's chain or dies with Clique's
    delay (`in_flight` seconds at most), then lower the identity's high-water mark to
    this node's head. geth writes a block it sealed to its own chain before it sends it
    to anyone, so a height above that head was never published: the next holder may
    sign it. Without this, stopping every node at once (`poactl down`) would leave each
    identity's mark one block above the chain, and no holder could ever seal again.
    When the node cannot be asked, the mark stays: safety first."""
    deadline = time.monotonic() + in_flight
    while True:
        answer = ipc_probe(ipc, "eth_blockNumber", [], timeout=1.0)
        if not isinstance(answer, str):
            log.warning("%s: geth does not answer; the identity's mark stays", keeper.holder)
            return
        head = int(answer, 16)
        if head >= keeper.signed_height or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    try:
        if keeper.lower_height(head):
            log.info("%s: the identity's mark is back at this node's head %d", keeper.holder, head)
    except PoaError as e:  # the store did not answer: the mark stays (safe)
        log.warning("%s: could not lower the identity's mark: %s", keeper.holder, e)
