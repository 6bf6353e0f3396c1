"""`up` waits for every node: one whose geth does not answer yet, or that has not synced
once, is still catching up, however young the chain (the heads come from fake geth IPC
sockets at each node's path)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from orchestrator.config import Consortium, parse_config
from orchestrator.local.layout import StateLayout
from orchestrator.local.readiness import lagging_nodes
from tests.helpers.fake_ipc import fake_geth_ipc
from tests.helpers.ports import consortium_yaml


@pytest.fixture
def layout() -> Iterator[StateLayout]:
    with tempfile.TemporaryDirectory(prefix="rd-", dir="/tmp") as root:  # short socket paths
        yield StateLayout(Path(root))


@pytest.fixture
def consortium() -> Consortium:
    return parse_config(consortium_yaml({"solo": 1}, rpc_nodes=1), source="test")


def lagging_with_heads(
    layout: StateLayout, consortium: Consortium, heads: dict[str, int]
) -> list[str]:
    with ExitStack() as stack:
        for name, head in heads.items():
            answers = {"eth_blockNumber": {"result": hex(head)}}
            stack.enter_context(fake_geth_ipc(layout.node(name).ipc, answers))
        return lagging_nodes(layout, consortium)


def test_the_nodes_are_the_ones_this_test_means(consortium: Consortium) -> None:
    assert [n.name for n in consortium.nodes] == ["solo-1", "solo-2"]


def test_a_node_that_does_not_answer_yet_is_catching_up_at_block_one(
    layout: StateLayout, consortium: Consortium
) -> None:
    assert lagging_with_heads(layout, consortium, {"solo-1": 1}) == ["solo-2"]


def test_a_node_still_at_the_genesis_is_catching_up(
    layout: StateLayout, consortium: Consortium
) -> None:
    assert lagging_with_heads(layout, consortium, {"solo-1": 1, "solo-2": 0}) == ["solo-2"]


def test_a_node_far_behind_is_catching_up(layout: StateLayout, consortium: Consortium) -> None:
    assert lagging_with_heads(layout, consortium, {"solo-1": 9, "solo-2": 4}) == ["solo-2"]


def test_nodes_within_the_allowed_lag_are_ready(
    layout: StateLayout, consortium: Consortium
) -> None:
    assert lagging_with_heads(layout, consortium, {"solo-1": 5, "solo-2": 3}) == []
    assert lagging_with_heads(layout, consortium, {"solo-1": 0, "solo-2": 0}) == []


def test_no_node_answering_is_not_ready(layout: StateLayout, consortium: Consortium) -> None:
    assert lagging_with_heads(layout, consortium, {}) == ["solo-1", "solo-2"]
