"""Background services of the local consortium besides the agents — each bank's monitor
and balancer — run as detached `poactl` processes, each in a directory of its own:

    <home>/<kind>.yaml    its settings          <home>/<kind>.log    its output
    <home>/<kind>.json    its pid and URL (written when it is started)

`start` spawns one and waits until it answers `<url><health_path>`; `pid` tells whether it
runs (the recorded pid, checked against its command line); `stop` ends it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from pydantic import BaseModel

from orchestrator.errors import WaitTimeout
from orchestrator.geth.proc import runs_with_arg, stop_pid
from orchestrator.logs import log_tail
from orchestrator.statefile import read_json, write_json_atomic

STOP = ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0))
SERVE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Service:
    kind: str  # "monitor", "balancer": the `poactl` command, and the files' stem
    home: Path

    @property
    def config(self) -> Path:
        return self.home / f"{self.kind}.yaml"

    @property
    def log(self) -> Path:
        return self.home / f"{self.kind}.log"

    @property
    def record(self) -> Path:
        return self.home / f"{self.kind}.json"

    def url(self) -> str | None:
        record = read_json(self.record) or {}
        return str(record["url"]) if "url" in record else None

    def pid(self) -> int | None:
        record = read_json(self.record) or {}
        pid = record.get("pid")
        return pid if isinstance(pid, int) and runs_with_arg(pid, str(self.config)) else None

    def start(self, settings: BaseModel, url: str) -> subprocess.Popen[bytes]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
        argv = [sys.executable, "-m", "orchestrator.cli", self.kind, "--config", str(self.config)]
        with self.log.open("ab") as out:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        write_json_atomic(self.record, {"pid": process.pid, "url": url})
        return process

    def wait_serving(self, process: subprocess.Popen[bytes], url: str, name: str) -> None:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            try:
                requests.get(url, timeout=1)
                return  # it answers (any status: a balancer says 401 to a stranger)
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise WaitTimeout(
                    f"the {self.kind} of {name} did not start serving {url}",
                    elapsed=SERVE_TIMEOUT if process.poll() is None else 0.0,
                    last_state="exited" if process.poll() is not None else "not answering",
                    log_tail=log_tail(self.log, 10),
                    obj=name,
                    hint=f"read {self.log}; a port may be taken (ports in the consortium file)",
                )
            time.sleep(0.1)

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, STOP)
        return True


@dataclass
class Starting:
    """Services spawned and not yet waited for: `wait` blocks until each serves, so a
    caller can start them early and do other work meanwhile."""

    pending: list[tuple[Service, subprocess.Popen[bytes], str, str]]  # svc, process, url, name

    @property
    def names(self) -> list[str]:
        return [name for _, _, _, name in self.pending]

    def wait(self) -> list[str]:
        for svc, process, url, name in self.pending:
            svc.wait_serving(process, url, name)
        return self.names

    def stop(self) -> None:
        for svc, _, _, _ in self.pending:
            svc.stop()
