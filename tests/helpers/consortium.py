"""A local consortium for a test module: created from a consortium file's text in a short
temporary directory, started, handed over, then stopped and deleted."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.local.consortium import LocalConsortium


@contextmanager
def running_consortium(
    geth: str, text: str, *, timeout: float = 120, **options: Any
) -> Iterator[LocalConsortium]:
    """`options` go to LocalConsortium (other store or vault backends)."""
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    config.write_text(text)
    local = LocalConsortium(root / "s", geth=geth, **options)
    try:
        local.up(config, timeout=timeout)
        yield local
    finally:
        if local.exists:
            local.down()
        shutil.rmtree(root, ignore_errors=True)
