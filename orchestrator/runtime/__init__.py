"""The node boundary: how a geth is started and stopped.

Services see only `Runtime` and `NodeProcess`; `orchestrator.runtime.process` runs geth
as a local child process. (A container backend can stand behind the same Protocols.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class NodeProcess(Protocol):
    """A started geth."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit code if it has exited, else None."""

    def stop(self) -> int:
        """Stop it (SIGINT, then TERM, then KILL, each with a bounded wait); the exit code."""


class Runtime(Protocol):
    def start(self, argv: Sequence[str], *, name: str, log_file: Path) -> NodeProcess:
        """Start `argv` for node `name`, appending its output to `log_file`."""
