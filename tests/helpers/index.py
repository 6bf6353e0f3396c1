"""A bank's read index in the test's own process: the real `ReadIndex` (SQLite, HTTP
server on a free port, follower thread) on a real geth, stopped at the end."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import requests

from orchestrator.index.service import ReadIndex
from orchestrator.index.settings import IndexFile
from orchestrator.index.sqlite import SqliteIndex
from orchestrator.index.store import Registry
from tests.helpers.ports import free_port_bases
from tests.helpers.waiting import wait_for


@contextlib.contextmanager
def running_index(
    rpc_urls: list[str],
    registry: str,
    home: Path,
    *,
    from_block: int = 0,
    tokens_dir: Path | None = None,
    poll_seconds: float = 0.1,
) -> Iterator[ReadIndex]:
    """A serving, filling index of `registry` on the node(s) at `rpc_urls`."""
    (port,) = free_port_bases(1, 1)
    settings = IndexFile(
        member="bank-a",
        port=port,
        rpc_urls=rpc_urls,
        state_dir=home,
        registry=registry,
        from_block=from_block,
        tokens_dir=tokens_dir,
        poll_seconds=poll_seconds,
    )
    index = ReadIndex(
        settings,
        store=SqliteIndex(settings.database_path),
        registry_source=lambda: Registry(registry, from_block),
    )
    thread = threading.Thread(target=index.serve, name="test-index", daemon=True)
    thread.start()
    try:
        wait_for(lambda: _answers(settings.url), 10, "the index to serve", poll=0.05)
        yield index
    finally:
        index.stop()
        thread.join(timeout=15)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def index_url(index: ReadIndex) -> str:
    return index.settings.url


def caught_up(index: ReadIndex, block: int) -> bool:
    """Whether the index holds `block` (or a later one)."""
    tip = index.store.tip()
    return tip is not None and tip.number >= block
