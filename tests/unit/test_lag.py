"""The one assessment of "how far behind is a node, is the chain stalled"
(`orchestrator.geth.lag`), from observations alone."""

from __future__ import annotations

import pytest

from orchestrator.geth.lag import (
    MAX_LAG_BLOCKS,
    Head,
    HeadWatch,
    assess,
    stall_after,
    stuck_after,
)

NOW = 1_800_000_000.0
PERIOD = 2


def test_one_threshold_for_a_stall_and_for_a_stuck_node() -> None:
    assert stall_after(2) == 10.0 and stall_after(5) == 25.0
    assert stuck_after(2) == 15.0 and stuck_after(4) == 20.0  # beyond geth's 10 s sync cycle


def test_a_node_level_with_the_others_does_not_lag() -> None:
    a = assess(Head(100, NOW, NOW), [Head(101, NOW), Head(99, NOW)], now=NOW, period=PERIOD)
    assert (a.top, a.behind, a.lagging, a.stalled) == (101, 1, False, False)
    assert a.node_problems == [] and a.chain_problems == []


def test_a_node_more_than_the_allowed_lag_behind_lags_with_its_real_lag() -> None:
    a = assess(Head(246, NOW), [Head(290, NOW, NOW)], now=NOW, period=PERIOD)
    assert a.behind == 44 and a.lagging
    assert a.node_problems == ["44 blocks behind the head (at 246, the chain at 290)"]
    edge = assess(Head(10, NOW), [Head(10 + MAX_LAG_BLOCKS, NOW)], now=NOW, period=PERIOD)
    assert not edge.lagging


def test_older_observations_are_compared_net_of_the_blocks_sealed_in_between() -> None:
    # A heartbeat 5 s before the node's own head: up to 3 blocks (2 s period) came since.
    assert assess(Head(7, NOW - 5), [Head(12, NOW)], now=NOW, period=PERIOD).behind == 2
    # Another node's older heartbeat never makes this node look ahead or behind.
    assert assess(Head(12, NOW), [Head(7, NOW - 5)], now=NOW, period=PERIOD).behind == 0


def test_a_node_still_at_the_genesis_lags_however_young_the_chain() -> None:
    a = assess(Head(0, NOW), [Head(1, NOW)], now=NOW, period=PERIOD)
    assert a.lagging
    assert a.node_problems == ["still at the genesis while the chain is at block 1"]
    assert not assess(Head(0, NOW), [Head(0, NOW)], now=NOW, period=PERIOD).lagging


def test_stale_observations_say_nothing() -> None:
    old = Head(500, NOW - 100, NOW - 100)
    a = assess(Head(10, NOW, NOW), [old], now=NOW, period=PERIOD, fresh_for=30)
    assert (a.top, a.behind, a.lagging) == (10, 0, False)


def test_a_lagging_node_whose_head_does_not_move_is_stuck() -> None:
    others = [Head(290, NOW, NOW)]
    moving = assess(Head(246, NOW), others, now=NOW, period=PERIOD, own_since=NOW - 5)
    assert moving.lagging and not moving.stuck
    stuck = assess(Head(246, NOW), others, now=NOW, period=PERIOD, own_since=NOW - 45)
    assert stuck.stuck_for == 45
    assert "its head has not moved for 45s" in stuck.node_problems[0]
    level = assess(Head(290, NOW), others, now=NOW, period=PERIOD, own_since=NOW - 45)
    assert not level.stuck  # a head that does not move while nobody's does: not stuck


def test_the_chain_is_stalled_when_the_newest_block_anyone_saw_is_old() -> None:
    a = assess(Head(246, NOW, NOW - 90), [], now=NOW, period=PERIOD)
    assert a.stalled and a.head_age == 90
    assert a.chain_problems == ["chain not advancing: newest block is 90s old"]
    # One node stuck on an old block while another's head is fresh: no stall, a lag.
    b = assess(Head(246, NOW, NOW - 90), [Head(290, NOW - 3, NOW - 4)], now=NOW, period=PERIOD)
    assert not b.stalled and b.head_age == 4 and b.lagging


def test_the_quiet_between_two_heartbeats_is_not_a_stall() -> None:
    heartbeat = Head(15, NOW - 8, NOW - 9)  # seen 8 s ago, its block then 1 s old
    quiet = assess(None, [heartbeat], now=NOW + 10, period=PERIOD)
    assert quiet.head_age == 19 and not quiet.stalled
    again = Head(15, NOW + 12, NOW - 9)  # the next heartbeat: the same head, 21 s on
    assert assess(None, [heartbeat, again], now=NOW + 12, period=PERIOD).stalled


def test_the_genesis_timestamp_is_not_a_block_time() -> None:
    a = assess(Head(0, NOW, 0.0), [Head(0, NOW, 0.0)], now=NOW, period=PERIOD)
    assert a.head_age is None and not a.stalled


def test_a_node_that_did_not_answer_has_no_lag_but_the_chain_is_judged() -> None:
    a = assess(None, [Head(5, NOW, NOW - 1)], now=NOW, period=PERIOD)
    assert (a.own, a.top, a.behind, a.lagging, a.stalled) == (None, 5, None, False, False)


@pytest.mark.parametrize("gap", [0.5, 4.9])
def test_head_watch_counts_since_the_head_last_moved(gap: float) -> None:
    watch = HeadWatch(max_gap=5.0)
    assert watch.observe(7, 100.0) == 100.0
    assert watch.observe(7, 100.0 + gap) == 100.0
    assert watch.observe(8, 106.0) == 106.0


def test_head_watch_starts_anew_after_the_observer_itself_was_paused() -> None:
    watch = HeadWatch(max_gap=5.0)
    watch.observe(246, 100.0)
    assert watch.observe(246, 145.0) == 145.0  # frozen 45 s: nobody looked meanwhile
    assert watch.observe(246, 145.5) == 145.0
