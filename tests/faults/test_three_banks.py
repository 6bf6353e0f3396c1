"""A third bank joins the lab's consortium (`poactl join`'s code from its own application
host, admitted by both founders through their balancers, its validators seated), then is
cut from the other two: 4 of 6 signers keep sealing, and after the heal every node is at
one head with nothing acknowledged lost."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import three
from tests.faults.conftest import FULL
from tests.faults.harness import FaultLab
from tests.faults.sizes import CI
from tests.faults.sizes import FULL as FULL_SIZES

pytestmark = [
    pytest.mark.geth, pytest.mark.slow, pytest.mark.faults,
    pytest.mark.skipif(not FULL, reason="on demand (5 min): POACTL_FAULTS=full, or "
                       "python -m scripts.bench.faults --only three"),
]  # fmt: skip


@pytest.fixture(scope="module")
def fl(lab_ready: None) -> Iterator[FaultLab]:
    root = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    try:
        with FaultLab.running(root / "lab", None) as running:
            three.join_third_bank(running)
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_one_bank_of_three_cut_off_leaves_four_signers_of_six_sealing(fl: FaultLab) -> None:
    out = three.partition_third(fl, FULL_SIZES if FULL else CI)
    print(out.row())
    assert all(t.stall_s is None for t in out.trials), "4 of 6 signers keep sealing"
    out.assert_safe()
