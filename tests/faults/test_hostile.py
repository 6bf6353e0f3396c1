"""Hostile peers in the lab (the Go peer of tests/faults/hostile/, built from geth's own
packages): a block sealed by a non-signer, by a signer out of turn too often, or stamped
an hour ahead is imported by no node; the first two get the peer dropped; the chain goes
on and the checker finds nothing signed twice."""

from __future__ import annotations

import shutil

import pytest

from tests.faults import hostile, impostor
from tests.faults.harness import FaultLab

pytestmark = [pytest.mark.geth, pytest.mark.slow, pytest.mark.faults]


@pytest.fixture(scope="module")
def fl(fault_lab: FaultLab) -> FaultLab:
    if shutil.which("go") is None:
        pytest.skip("Go builds the hostile peer (tests/faults/hostile); it is not installed")
    hostile.build_peer()
    return fault_lab


@pytest.mark.parametrize("kind", hostile.KINDS)
def test_a_bad_block_from_a_peer_is_refused(fl: FaultLab, kind: str) -> None:
    out, report = hostile.hostile_peer(fl, kind)
    print(out.row(), report)
    assert report["imported"] is False, report
    if kind != "future":  # geth neither drops nor imports a block from the future
        assert report["dropped"] is True, report
    assert out.trials[0].resume_s is not None  # the chain went on
    out.assert_safe()


def test_consortium_data_that_answers_garbage_changes_nothing(fl: FaultLab) -> None:
    out, seen = impostor.garbage_data(fl)
    print(out.row(), seen)
    assert out.trials[0].stall_s is None, "bank-b's agents went on"
    assert seen["new blobs in bank-b's store"] == [] and seen["genesis unchanged"] is True, seen
    assert "joined" not in str(seen["join"]) and seen["state dir left"] is False, seen
    out.assert_safe()
