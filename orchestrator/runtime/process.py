"""Run geth as a local child process; output is appended to the node's log file."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.errors import NodeError
from orchestrator.geth.proc import STOP_SEQUENCE

log = logging.getLogger(__name__)


class LocalProcess:
    def __init__(self, popen: subprocess.Popen[bytes], name: str) -> None:
        self._popen = popen
        self._name = name

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()

    def stop(self) -> int:
        for sig, wait in STOP_SEQUENCE:
            if self._popen.poll() is not None:
                break
            log.info("stopping %s (pid %d) with %s", self._name, self.pid, sig.name)
            self._popen.send_signal(sig)
            try:
                self._popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self._popen.wait()


class ProcessRuntime:
    """Starts nodes as child processes of the calling (supervisor) process."""

    def run_once(
        self, argv: Sequence[str], *, name: str, timeout: float = 120.0
    ) -> tuple[int, str]:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NodeError(
                f"cannot run `{' '.join(argv[1:4])} ...`: {e}",
                obj=name,
                hint=f"check that {argv[0]} exists and is executable",
            ) from e
        return done.returncode, done.stdout + done.stderr

    def start(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> LocalProcess:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_file.open("ab") as out:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env} if env else None,
                )
        except OSError as e:
            raise NodeError(
                f"cannot start geth: {e.strerror}",
                obj=name,
                hint=f"check that {argv[0]} exists and is executable",
            ) from e
        return LocalProcess(popen, name)
