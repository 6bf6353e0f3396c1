"""A consortium whose hosts live in the lab's namespaces: the same agents, balancers and
monitors as `poactl up` starts, each process started inside its host's namespace.

What changes from the one-machine consortium (`local.consortium`), and only that:

* each bank's store is its own Azurite (`<bank>-st`), as a Blob Storage account: its
  leases and blobs in container `poactl`, its consortium data in container
  `consortium`, which the other banks read through a read-only SAS URL — across the
  WAN, like every other link between banks;
* each node listens, and publishes its enode, on its own address; peers reach it through
  its bank's balancer (`<bank>-lb`), whose address the enode names;
* the balancer and the monitor listen on the balancer host's address.

The vaults stay each bank's local encrypted vault (files of the state dir). Calls that
reach a bank's store run inside that bank's application host (`on(member)`).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from pydantic import BaseModel

from orchestrator.agent.settings import AgentFile
from orchestrator.balancer.tokens import create_token
from orchestrator.config import Consortium, NodeSpec, PublishSettings, StoreSettings, load_config
from orchestrator.geth.command import locate_geth
from orchestrator.lab import netns
from orchestrator.lab.topology import LAB_NET, Plan
from orchestrator.local import balancers, monitors
from orchestrator.local.consortium import UP_TIMEOUT_SECONDS, LocalConsortium, UpResult
from orchestrator.local.readiness import wait_until_ready
from orchestrator.local.services import Service
from orchestrator.monitor.settings import MonitorFile
from orchestrator.network.create import NetworkInfo

T = TypeVar("T")

STORE_PORT = 10000
ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account and key
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STORE_CONTAINER, DATA_CONTAINER = "poactl", "consortium"
SAS_EXPIRY = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)  # fixed: the same URL on every call


class LabConsortium(LocalConsortium):
    """One bank set's state dir (the founders', or a bank that joined) in the lab `plan`."""

    def __init__(self, state_dir: Path, plan: Plan, *, key_file: Path, geth: str | None = None):
        super().__init__(state_dir, geth=geth, store=self.bank_store)
        self.plan = plan
        self.key_file = key_file

    # -- where things are ---------------------------------------------------------------
    def account_url(self, member: str) -> str:
        return f"http://{self.plan.bank(member).store.address}:{STORE_PORT}/{ACCOUNT}"

    def bank_store(self, member: str) -> StoreSettings:
        return StoreSettings(
            kind="azure", account_url=self.account_url(member), container=STORE_CONTAINER,
            account_key_file=self.key_file,
        )  # fmt: skip

    def data_url(self, member: str) -> str:
        """The bank's consortium data: its container, read-only (read, list) by SAS."""
        sas = generate_container_sas(
            ACCOUNT, DATA_CONTAINER, account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True, list=True), expiry=SAS_EXPIRY,
        )  # fmt: skip
        return f"{self.account_url(member)}/{DATA_CONTAINER}?{sas}"

    def rpc_url(self, node: NodeSpec) -> str:
        return f"http://{self.plan.host(node.name).address}:{node.http_port}"

    def balancer_url(self, member: str) -> str:
        port = self.load().balancer_ports(member)[0]
        return f"http://{self.plan.bank(member).balancer.address}:{port}/"

    def on(self, member: str, call: Callable[[], T]) -> T:
        """`call()` from `member`'s application host (where its store and balancer are)."""
        with netns.inside(self.plan.bank(member).app.ns):
            return call()

    # -- what the agents and services run with -------------------------------------------
    def store_settings(
        self,
        member: str,
        own: StoreSettings | None = None,
        *,
        publishes: bool = True,
        consortium: Consortium | None = None,
        joined_from: Mapping[str, str] | None = None,
    ) -> StoreSettings:
        base = super().store_settings(
            member, own, publishes=publishes, consortium=consortium, joined_from=joined_from
        )
        publish = PublishSettings(
            kind="azure", account_url=self.account_url(member), container=DATA_CONTAINER,
            account_key_file=self.key_file,
        )  # fmt: skip
        return base.model_copy(update={"publish": publish if publishes else None})

    def agent_settings(
        self,
        consortium: Consortium,
        node: NodeSpec,
        geth: str,
        *,
        joined_from: Mapping[str, str] | None = None,
    ) -> AgentFile:
        base = super().agent_settings(consortium, node, geth, joined_from=joined_from)
        address = self.plan.host(node.name).address
        balancer = self.plan.bank(node.member).balancer.address
        return base.model_copy(update={
            "host": address, "rpc_host": address, "peer_network": str(LAB_NET),
            "advertise": f"{balancer}:{node.peer_port}" if base.advertise else None,
        })  # fmt: skip

    def network(self) -> NetworkInfo | None:
        if not self.exists:
            return None
        founder = self.load().members()[0]
        return self.on(founder, super().network)

    # -- starting --------------------------------------------------------------------
    def up(
        self,
        config: Path | None = None,
        *,
        timeout: float = UP_TIMEOUT_SECONDS,
        on_progress: Callable[[str], None] = lambda _line: None,
    ) -> UpResult:
        """Create the consortium (first time), start each bank's balancer, every agent not
        running, wait until every identity seals and every node is at the head, then start
        the monitors; each process inside its host's namespace."""
        t0 = time.monotonic()
        created = not self.exists
        if created:
            self._create(load_config(config), self._geth_binary())
        consortium = self.load()
        running = [n.name for n in consortium.nodes if self._agent_running(n.name)]
        spawned: dict[str, subprocess.Popen[bytes]] = {}
        try:
            self.start_balancers(consortium)
            for node in consortium.nodes:
                if node.name not in running:
                    spawned[node.name] = self.start_agent(node.name)
            head, sealed = wait_until_ready(
                self.layout, consortium, self.network, spawned, deadline=t0 + timeout, t0=t0,
                on_progress=on_progress,
            )  # fmt: skip
            self.start_monitors_in_lab(consortium)
        except BaseException:
            self.down()
            raise
        return UpResult(
            created=created, started=list(spawned), already_running=running,
            member_rpc={m: [self.rpc_url(n) for n in consortium.nodes if n.member == m]
                        for m in consortium.members()},
            head=head, seconds=time.monotonic() - t0, signers_sealed=sealed,
            monitors={m: self._monitor_settings(consortium, m).url for m in consortium.members()},
            balancers={m: self.balancer_url(m) for m in consortium.members()},
        )  # fmt: skip

    def _geth_binary(self) -> str:
        return locate_geth(self._geth)

    def start_agent(self, name: str) -> subprocess.Popen[bytes]:
        """Start `name`'s agent in its namespace (it starts geth there)."""
        paths = self.layout.node(name)
        argv = [sys.executable, "-m", "orchestrator.cli", "-v", "agent",
                "--config", str(paths.agent_config)]  # fmt: skip
        with paths.agent_log.open("ab") as out, netns.inside(self.plan.host(name).ns):
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def start_balancers(self, consortium: Consortium) -> None:
        for member in consortium.members() if consortium.settings.balancer else []:
            svc = balancers.service(self.layout, member)
            create_token(svc.home / "tokens", balancers.DEFAULT_APP)
            if svc.pid() is not None:
                continue
            base = balancers.settings_for(self.layout, consortium, member)
            settings = base.model_copy(update={
                "host": self.plan.bank(member).balancer.address,
                "nodes": [n.model_copy(update={"host": self.plan.host(n.name).address})
                          for n in base.nodes],
            })  # fmt: skip
            self._start_service(svc, settings, settings.url, member)

    def _monitor_settings(self, consortium: Consortium, member: str) -> MonitorFile:
        first = next(n for n in consortium.nodes if n.member == member)
        store = self.store_settings(member, publishes=False, consortium=consortium)
        base = monitors.settings_for(self.layout, consortium, member, store, self.rpc_url(first))
        return base.model_copy(update={"host": self.plan.bank(member).balancer.address})

    def start_monitors_in_lab(self, consortium: Consortium) -> None:
        for member in consortium.members():
            svc = monitors.service(self.layout, member)
            if svc.pid() is None:
                settings = self._monitor_settings(consortium, member)
                self._start_service(svc, settings, settings.url, member, probe="healthz")

    def _start_service(
        self, svc: Service, settings: BaseModel, url: str, member: str, *, probe: str = ""
    ) -> None:
        """Start a bank's balancer or monitor on its balancer host and wait until it serves."""
        with netns.inside(self.plan.bank(member).balancer.ns):
            process = svc.start(settings, url)
            svc.wait_serving(process, url + probe, member)
