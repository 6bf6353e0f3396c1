"""The links between banks: Toxiproxy in the router namespace, on every connection that
crosses from one bank to another.

Each bank's endpoints that other banks reach (its balancer's peering ports, its store)
get one Toxiproxy proxy per *other* bank, and a REDIRECT rule on the router sends that
bank's connections to the endpoint into its proxy. Nodes keep dialling the addresses the
banks publish; nothing in poactl knows the proxies are there. Traffic inside a bank never
reaches the router. Latency and bandwidth are Toxiproxy toxics on those proxies, in both
directions (`slow`); `reset` takes them off. Partitions are iptables rules
(`topology.cut_banks`), not Toxiproxy: a cut link drops packets, as a WAN does, instead of
refusing connections.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from orchestrator.errors import LabError, ToolError
from orchestrator.lab import netns
from orchestrator.lab.topology import Plan

TOXIPROXY_VERSION = "2.12.0"
_REPO_TOXIPROXY = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "toxiproxy-server"
API_PORT = 8474
FIRST_LISTEN_PORT = 21000
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Endpoint:
    """Something of bank `member` that other banks connect to."""

    member: str
    address: str
    port: int


def locate_toxiproxy() -> Path:
    if not _REPO_TOXIPROXY.is_file():
        raise ToolError(
            f"toxiproxy {TOXIPROXY_VERSION} not found",
            obj=str(_REPO_TOXIPROXY),
            hint="run scripts/setup.sh (it builds toxiproxy into .tools/bin)",
        )
    return _REPO_TOXIPROXY


class Wan:
    """The Toxiproxy of one lab; every call enters the router's namespace."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @property
    def _api(self) -> str:
        return f"http://127.0.0.1:{API_PORT}"

    def start(self, log: Path) -> None:
        """Start Toxiproxy in the router (it ends with the namespace) and wait for it."""
        argv = [str(locate_toxiproxy()), "-host", "127.0.0.1", "-port", str(API_PORT)]
        with log.open("ab") as out, netns.inside(self.plan.router):
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self._call("GET", "/version")
                return
            except LabError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise LabError(
                        "toxiproxy did not start", obj=str(log), hint=f"read {log}"
                    ) from None
                time.sleep(0.1)

    def link(self, endpoints: list[Endpoint]) -> None:
        """Put every endpoint behind one proxy per other bank of the plan (those not
        linked yet)."""
        existing = self._call("GET", "/proxies")
        ports = [int(p["listen"].rsplit(":", 1)[1]) for p in existing.values()]
        listen = max(ports, default=FIRST_LISTEN_PORT - 1)
        made = set(existing)
        for e in dict.fromkeys(endpoints):
            for src in self.plan.banks:
                name = f"{src.member}>{e.address}:{e.port}"
                if src.member == e.member or name in made:
                    continue
                made.add(name)
                listen += 1
                self._call("POST", "/proxies", {
                    "name": name, "listen": f"0.0.0.0:{listen}",
                    "upstream": f"{e.address}:{e.port}", "enabled": True,
                })  # fmt: skip
                netns.run(["iptables", "-t", "nat", "-A", "PREROUTING", "-s", src.subnet,
                           "-d", e.address, "-p", "tcp", "--dport", str(e.port),
                           "-j", "REDIRECT", "--to-ports", str(listen)],
                          ns=self.plan.router)  # fmt: skip

    def slow(self, *, latency_ms: int = 0, jitter_ms: int = 0, rate_kb: int | None = None) -> None:
        """Every link between banks gets `latency_ms` (± `jitter_ms`) each way and, with
        `rate_kb`, a bandwidth cap in KB/s each way (replacing earlier toxics)."""
        self.reset()
        for name in self._call("GET", "/proxies"):
            for stream in ("upstream", "downstream"):
                if latency_ms:
                    self._toxic(name, f"latency-{stream}", "latency", stream,
                                {"latency": latency_ms, "jitter": jitter_ms})  # fmt: skip
                if rate_kb:
                    self._toxic(name, f"bandwidth-{stream}", "bandwidth", stream,
                                {"rate": rate_kb})  # fmt: skip

    def upstream(self, src: str, endpoint: Endpoint, to: str) -> None:
        """Send bank `src`'s connections to `endpoint` to `to` (host:port) instead: what
        `src` reads there is then whatever answers at `to` (an impostor's server)."""
        name = quote(f"{src}>{endpoint.address}:{endpoint.port}", safe="")
        self._call("POST", f"/proxies/{name}", {"upstream": to})

    def toxics(self) -> dict[str, list[dict[str, Any]]]:
        """Proxy name -> its toxics."""
        proxies = self._call("GET", "/proxies")
        return {name: list(p.get("toxics") or []) for name, p in proxies.items()}

    def reset(self) -> None:
        """No toxic on any link (every proxy enabled)."""
        self._call("POST", "/reset")

    def _toxic(
        self, proxy: str, name: str, kind: str, stream: str, attributes: dict[str, int]
    ) -> None:
        self._call("POST", f"/proxies/{quote(proxy, safe='')}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": 1.0,
            "attributes": attributes,
        })  # fmt: skip

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with netns.inside(self.plan.router):
            try:
                answer = requests.request(method, self._api + path, json=body, timeout=5)
            except requests.RequestException as e:
                raise LabError(f"toxiproxy does not answer: {e}", obj=self._api) from e
        if answer.status_code >= 300:
            raise LabError(
                f"toxiproxy refused {method} {path}: {answer.status_code} {answer.text[:200]}",
                obj=self._api,
            )
        return answer.json() if answer.content else None
