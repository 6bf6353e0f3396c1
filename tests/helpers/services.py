"""Real servers a monitoring test needs, started for the test and stopped after it:
Debian's Prometheus, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.monitor.prometheus import RULES, prometheus_config
from tests.helpers.ports import free_port_bases

CHROMIUM = "/usr/bin/chromium"
# What the probe of this machine found Chromium needs to start quietly: no sandbox as
# root, and none of the background connections a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def alerts(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        alerts: list[dict[str, Any]] = answer["data"]["alerts"]
        return alerts

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result


@contextmanager
def prometheus(*, monitors: list[str], agents: list[str], geths: list[str]) -> Iterator[Prometheus]:
    """Debian's prometheus scraping the given host:port targets every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/setup.sh (Debian package 'prometheus')")
    work = Path(tempfile.mkdtemp(prefix="prom-", dir="/tmp"))
    rules = work / "alerts.rules.yml"
    rules.write_bytes(RULES.read_bytes())
    config = work / "prometheus.yml"
    config.write_text(
        prometheus_config(
            monitors=monitors, agents=agents, geths=geths, rules_file=rules, interval_seconds=1
        )
    )
    (port,) = free_port_bases(1, 1)
    argv = [
        binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("prometheus did not start:\n" + (work / "prometheus.log").read_text())
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def browser() -> Iterator[Any]:
    """A Playwright browser: Debian's Chromium, headless."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/setup.sh (Debian package 'chromium')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
