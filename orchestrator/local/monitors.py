"""The banks' monitors on one machine: one `poactl monitor` per bank, started by `up`
(once the network is ready), shown by `status`, stopped by `down`.

Each has `monitors/<bank>/`: its `monitor.yaml`, its history (`history.sqlite`), its log
and `monitor.json` (its pid and URL, written by `up`). It reads the bank's store and
follows the chain through the bank's first node, as a bank's monitor VM would.
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

from orchestrator.config import Consortium, StoreSettings
from orchestrator.errors import WaitTimeout
from orchestrator.geth.proc import runs_with_arg, stop_pid
from orchestrator.local.layout import StateLayout
from orchestrator.logs import log_tail
from orchestrator.monitor.settings import MonitorFile
from orchestrator.statefile import read_json, write_json_atomic

MONITOR_STOP = ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
SERVE_TIMEOUT = 15.0


@dataclass(frozen=True)
class MonitorRow:
    member: str
    url: str
    running: bool

    def as_dict(self) -> dict[str, object]:
        return {"member": self.member, "url": self.url, "running": self.running}


def _dir(layout: StateLayout, member: str) -> Path:
    return layout.root / "monitors" / member


def settings_for(
    layout: StateLayout, consortium: Consortium, member: str, store: StoreSettings
) -> MonitorFile:
    node = next(n for n in consortium.nodes if n.member == member)  # the bank's first node
    return MonitorFile(
        member=member,
        port=consortium.monitor_port(member),
        rpc_url=node.rpc_url,
        state_dir=_dir(layout, member),
        consortium_file=layout.config,
        store=store,
    )


def _pid(layout: StateLayout, member: str) -> int | None:
    record = read_json(_dir(layout, member) / "monitor.json") or {}
    pid = record.get("pid")
    config = str(_dir(layout, member) / "monitor.yaml")
    return pid if isinstance(pid, int) and runs_with_arg(pid, config) else None


def start(layout: StateLayout, consortium: Consortium, store: StoreSettings) -> list[str]:
    """Start the monitors that do not run, and wait until they serve; the members whose
    monitor was started."""
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    for member in consortium.members():
        if _pid(layout, member) is not None:
            continue
        settings = settings_for(layout, consortium, member, store)
        home = _dir(layout, member)
        home.mkdir(parents=True, exist_ok=True)
        config = home / "monitor.yaml"
        config.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
        argv = [sys.executable, "-m", "orchestrator.cli", "monitor", "--config", str(config)]
        with (home / "monitor.log").open("ab") as out:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        write_json_atomic(home / "monitor.json", {"pid": process.pid, "url": settings.url})
        started[member] = (process, settings.url)
    for member, (process, url) in started.items():
        _wait_serving(member, process, url, _dir(layout, member) / "monitor.log")
    return list(started)


def _wait_serving(member: str, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while True:
        try:
            if requests.get(url + "healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise WaitTimeout(
                f"the monitor of {member} did not start serving {url}",
                elapsed=SERVE_TIMEOUT if process.poll() is None else 0.0,
                last_state="exited" if process.poll() is not None else "not answering",
                log_tail=log_tail(log, 10),
                obj=member,
                hint=f"read {log}; its port may be taken (ports.monitor in the consortium file)",
            )
        time.sleep(0.1)


def rows(layout: StateLayout, consortium: Consortium) -> list[MonitorRow]:
    out = []
    for member in consortium.members():
        record = read_json(_dir(layout, member) / "monitor.json") or {}
        url = str(record.get("url") or f"http://127.0.0.1:{consortium.monitor_port(member)}/")
        out.append(MonitorRow(member, url, _pid(layout, member) is not None))
    return out


def stop(layout: StateLayout, consortium: Consortium) -> list[str]:
    """Stop the running monitors; the members whose monitor was stopped."""
    stopped = []
    for member in consortium.members():
        pid = _pid(layout, member)
        if pid is not None:
            stop_pid(pid, MONITOR_STOP)
            stopped.append(member)
    return stopped
