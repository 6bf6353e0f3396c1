"""The fault suite on the default consortium (two banks, two signers each, one spare),
every node in its own namespace, under a steady write load through both balancers.

Each test runs one scenario (`scenarios`) at the size of `sizes` (one trial each in CI;
`POACTL_FAULTS=full` for the issue's counts) and asserts what must hold whatever the
timing: no acknowledged write lost, no height signed twice by one identity, every block's
seal checked, and the chain back at one head afterwards. Timings are figures, printed
here and tabled by `python -m scripts.bench.faults`, never asserted.

A test whose recovery is not yet proven in the lab is `xfail` (not strict) with its
finding's number in docs/reliability.md ("Findings the suite made").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.agent.status import AgentState, GethState
from tests.faults import disk, scenarios
from tests.faults.conftest import FULL
from tests.faults.harness import FaultLab
from tests.faults.sizes import CI
from tests.faults.sizes import FULL as FULL_SIZES
from tests.faults.verdict import Outcome

pytestmark = [pytest.mark.geth, pytest.mark.slow, pytest.mark.faults]
SIZE = FULL_SIZES if FULL else CI
full_only = pytest.mark.skipif(
    not FULL, reason="on demand: POACTL_FAULTS=full, or python -m scripts.bench.faults"
)


@pytest.fixture
def fl(fault_lab: FaultLab) -> FaultLab:
    return fault_lab


def shown(outcome: Outcome) -> Outcome:
    print(outcome.row())
    return outcome


def test_kill9_of_a_sealing_node_loses_nothing(fl: FaultLab) -> None:
    shown(scenarios.kill9(fl, SIZE.kill9)).assert_safe()


def test_a_node_frozen_past_its_lease_with_the_chain_stalled(fl: FaultLab) -> None:
    out = shown(scenarios.freeze(fl, SIZE.freeze_stalled, seconds=SIZE.freeze_seconds,
                                 stall_chain=True))  # fmt: skip
    assert all(t.stall_s is not None for t in out.trials), "two signers of four left must stall"
    out.assert_safe()


@full_only
def test_a_node_frozen_past_its_lease(fl: FaultLab) -> None:
    shown(scenarios.freeze(fl, SIZE.freeze, seconds=SIZE.freeze_seconds)).assert_safe()


def test_a_sealing_node_cut_from_every_other_node(fl: FaultLab) -> None:
    out = shown(scenarios.partition(
        fl, SIZE.partition_node, seconds=SIZE.partition_seconds,
        label="partition 3 | 1 (a sealing node)", cut="node",
    ))  # fmt: skip
    # Whether the three keep sealing without a pause is a figure, not an assertion: at the
    # missing signer's turns a block is sealed out of turn, and geth's re-commits under
    # load keep interrupting it (docs/reliability.md, "Losing one signer of four").
    out.assert_safe()


def test_a_node_cut_from_its_own_bank(fl: FaultLab) -> None:
    shown(scenarios.partition(
        fl, SIZE.partition_in_bank, seconds=SIZE.partition_seconds,
        label="a node cut from its bank", cut="bank",
    )).assert_safe()  # fmt: skip


@pytest.mark.parametrize("latency", SIZE.wan_latencies_ms)
def test_latency_and_a_bandwidth_cap_between_banks(fl: FaultLab, latency: int) -> None:
    out = shown(scenarios.wan(fl, latency_ms=latency, rate_kb=SIZE.wan_rate_kb,
                              seconds=SIZE.wan_seconds))  # fmt: skip
    assert out.trials[0].extra.get("block period s"), "blocks kept coming"
    out.assert_safe()


def test_the_store_unreachable_longer_than_a_lease(fl: FaultLab) -> None:
    out = shown(scenarios.store_unreachable(fl, SIZE.store, seconds=SIZE.store_seconds))
    assert all(t.stall_s is not None and t.resume_s is not None for t in out.trials)
    out.assert_safe()


CRASH_LOOP: dict[str, object] = {}  # what the crash-loop test saw, for the monitor's test


def test_a_crash_looping_geth_backs_off_then_is_fatal(fl: FaultLab) -> None:
    out, seen = scenarios.crash_loop(fl)
    CRASH_LOOP.update(seen)
    print(shown(out).row(), seen)
    assert seen["geth"] is GethState.FATAL and seen["agent"] is AgentState.FATAL, seen
    assert "geth" in str(seen["agent message"])
    out.assert_safe()


def test_the_monitor_shows_a_crash_looping_node_as_fatal() -> None:
    if not CRASH_LOOP:
        pytest.skip("the crash-loop test did not run")
    assert "FATAL" in str(CRASH_LOOP["monitor"]), CRASH_LOOP["monitor"]


def test_a_full_disk_takes_the_node_out_and_nothing_else(fl: FaultLab) -> None:
    out, seen = disk.disk_full(fl)
    print(shown(out).row(), seen)
    assert out.trials[0].extra["out of rotation s"] > 0
    assert not out.failures_late, out.failures_late  # the other nodes answered
    out.assert_safe()


@full_only
@pytest.mark.xfail(reason="docs/reliability.md finding 1: an equal-TD fork after a 2|2 "
                   "partition could stall the chain for good", strict=False)  # fmt: skip
def test_a_bank_partitioned_from_the_other(lab_dir: Path) -> None:
    """In a lab of its own: when it deadlocks (finding 1) that lab is no use to another test."""
    with FaultLab.running(lab_dir / "lab", None) as fl:
        _partition_banks(fl)


def _partition_banks(fl: FaultLab) -> None:
    out = shown(scenarios.partition(
        fl, SIZE.partition_banks, seconds=SIZE.partition_seconds,
        label="partition 2 | 2 (bank from bank)", cut="banks",
    ))  # fmt: skip
    out.assert_safe()
