"""The fencing arithmetic: how long before its identity lease could expire an agent stops
sealing, and whether a lease is long enough to leave room for that.

Two nodes must never seal with one key. An agent counts its lease from when it *sent*
the last renewal, so its view of the expiry is never later than the store's; it stops
sealing `fence_margin` seconds before that, because geth may still publish a block it
signed just before being told to stop.
"""

from __future__ import annotations

import math

from orchestrator.errors import ConfigError


def fence_margin(block_period: int, signers: int) -> float:
    """How long before its lease could expire an agent stops sealing: geth may publish a
    block it signed up to one period plus Clique's out-of-turn wiggle (500 ms per
    signers/2+1) after `miner_stop`, and the fence's own IPC calls take up to 2 s."""
    return block_period + 0.5 * (signers // 2 + 1) + 3.0


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
