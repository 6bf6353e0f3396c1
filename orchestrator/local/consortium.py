"""A consortium on one machine, run by the same agents as on VMs.

`up` validates the consortium file, checks every port, makes the state directory
(`creating`: one `agent.yaml` per node, made aside and renamed into place), starts each
bank's balancer and one detached `poactl agent` per node (`agents`). Each bank has its
own local store (`banks/<bank>/store.sqlite`), publishes its consortium data for the
others (`banks/<bank>/published/`) and has its own local vault (`vaults/<bank>/`):
exactly the code path of a VM, with the local backends. The agents' leaders create
identities and the genesis; `up` returns once every identity is held, each has sealed a
block, and every node is caught up with the head (`readiness`), then starts each bank's
monitor. A failed `up` stops what it started.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.agent import status
from orchestrator.agent.paths import NodePaths
from orchestrator.agent.settings import AgentFile, AgentPorts, load_agent_config
from orchestrator.agent.status import AgentStatus
from orchestrator.boundaries import Store, Vault
from orchestrator.config import (
    Consortium,
    NodeSpec,
    PublishSettings,
    RuntimeSettings,
    StoreSettings,
    VaultSettings,
    load_config,
    parse_config,
)
from orchestrator.errors import StateError
from orchestrator.local import agents, balancers, indexes, monitors
from orchestrator.local.creating import check_socket_paths, create_state
from orchestrator.local.layout import StateLayout
from orchestrator.local.ports import check_ports_free
from orchestrator.local.readiness import wait_until_ready
from orchestrator.local.report import ConsortiumStatus
from orchestrator.local.services import Starting
from orchestrator.local.status import collect_status
from orchestrator.network.create import NetworkInfo, read_network
from orchestrator.statefile import read_json, write_json_atomic
from orchestrator.wiring import (
    geth_command,
    make_runtime,
    make_store,
    make_vault,
    remove_containers,
)

log = logging.getLogger(__name__)

UP_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class UpResult:
    created: bool
    started: list[str]
    already_running: list[str]
    member_rpc: dict[str, list[str]]
    head: int
    seconds: float
    signers_sealed: dict[str, int] = field(default_factory=dict)  # signer -> first block
    monitors: dict[str, str] = field(default_factory=dict)  # member -> its monitor's URL
    balancers: dict[str, str] = field(default_factory=dict)  # member -> its JSON-RPC URL
    indexes: dict[str, str] = field(default_factory=dict)  # member -> its read index's URL


class LocalConsortium:
    """One consortium in one state directory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        geth: str | None = None,
        store: Callable[[str], StoreSettings] | None = None,
        vault: Callable[[str], VaultSettings] | None = None,
        agent_store: Callable[[NodeSpec], StoreSettings] | None = None,
    ) -> None:
        """`store` and `vault` (member -> its settings) and `agent_store` (node -> its
        bank's store as that node's agent reaches it) replace the local backends; tests use
        them to run the same agents against Azurite and a Key Vault emulator. Each bank
        publishes its consortium data in a local directory, whatever its store."""
        self.layout = StateLayout(state_dir.expanduser().absolute())
        self._geth = geth
        self._own_store = store or (
            lambda m: StoreSettings(kind="local", path=self.layout.store(m))
        )
        self._vault = vault or (lambda m: VaultSettings(kind="local", path=self.layout.vault(m)))
        self._agent_store = agent_store or (lambda node: self._own_store(node.member))

    # -- reading state ---------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.layout.config.is_file()

    def load(self) -> Consortium:
        if not self.exists:
            raise StateError(
                "no consortium here",
                obj=str(self.layout.root),
                hint="run `poactl up` to create one, or pass the right --state-dir",
            )
        return parse_config(self.layout.config.read_text(), source=str(self.layout.config))

    def _refuse_shared_store(self) -> None:
        """A state dir from before each bank had its own store cannot run (`up`, `status`);
        `down` and `destroy` still work on it."""
        if (self.layout.root / "store.sqlite").exists():
            raise StateError(
                "this state dir was made by an older poactl: one store shared by every bank "
                "(store.sqlite), where each bank now has its own (banks/<bank>/)",
                obj=str(self.layout.root),
                hint="`poactl down`, then `poactl destroy` (it deletes that chain's data and "
                "keys) and `poactl up`",
            )

    def joined_from(self) -> dict[str, str]:
        """For a bank that joined a running network: the member it joined from -> that
        member's consortium data URL (`local.join`); empty for a founding consortium."""
        doc = read_json(self.layout.joined)
        return {str(doc["member"]): str(doc["url"])} if doc else {}

    def record_proposed_data(self, member: str, url: str) -> None:
        """Remember where a bank proposed for membership publishes (`members propose`)."""
        write_json_atomic(self.layout.proposed, {**self.proposed_data(), member: url})

    def proposed_data(self) -> dict[str, str]:
        """Banks proposed from this state dir -> their consortium data URLs."""
        doc = read_json(self.layout.proposed)
        return {str(m): str(u) for m, u in (doc or {}).items()}

    def data_url(self, member: str) -> str:
        """Where `member` publishes its consortium data for the other banks."""
        return self.layout.published(member).as_uri()

    def store_settings(
        self,
        member: str,
        own: StoreSettings | None = None,
        *,
        publishes: bool = True,
        consortium: Consortium | None = None,
        joined_from: Mapping[str, str] | None = None,
    ) -> StoreSettings:
        """`member`'s store as its processes see it: its own store (`own`, default the
        bank's), its publication, and every other bank's published data (the banks of
        `consortium`, default this state dir's, and the one it joined from)."""
        banks = (consortium or self.load()).members()
        joined = self.joined_from() if joined_from is None else joined_from
        others = {m: self.data_url(m) for m in banks if m != member}
        others.update(joined)
        others.update({m: u for m, u in self.proposed_data().items() if m != member})
        publish = PublishSettings(kind="local", path=self.layout.published(member))
        shared_from = next(iter(joined), banks[0])  # the member joined from, or the founder
        return (own or self._own_store(member)).model_copy(
            update={
                "publish": publish if publishes else None,
                "consortium_data": others,
                "shared_from": shared_from,
            }
        )

    def store(self, member: str | None = None) -> Store:
        """`member`'s view of the consortium (default: the founding bank's)."""
        bank = member or self.load().members()[0]
        return make_store(self.store_settings(bank), member=bank)

    def vault(self, member: str) -> Vault:
        """`member`'s own vault (on one machine the operator reaches every bank's)."""
        return make_vault(self._vault(member))

    def network(self) -> NetworkInfo | None:
        founder = self.load().members()[0] if self.exists else None
        own = self._own_store(founder) if founder else None
        if own is None or (own.kind == "local" and own.path and not own.path.exists()):
            return None
        return read_network(self.store(founder))

    def signers(self) -> dict[str, str]:
        """Node -> the signer address of the identity its agent holds right now."""
        found = {}
        for name in (n.name for n in self.load().nodes):
            record = status.read(self.layout.node(name).agent_status, AgentStatus)
            if record is not None and record.identity is not None and self._agent_running(name):
                found[name] = record.identity.signer
        return found

    # -- up --------------------------------------------------------------------------
    def up(
        self,
        config: Path | None = None,
        *,
        timeout: float = UP_TIMEOUT_SECONDS,
        on_progress: Callable[[str], None] = lambda _line: None,
    ) -> UpResult:
        t0 = time.monotonic()
        consortium = self._consortium_for_up(config)
        runtime = self._runtime(consortium)
        geth = geth_command(runtime)  # the checked binary, or the image's geth
        if runtime.kind == "docker":
            make_runtime(runtime, labels=self._labels())  # API reachable, image right
        self._check_socket_paths(consortium)
        running = [n.name for n in consortium.nodes if self._agent_running(n.name)]
        to_start = [n for n in consortium.nodes if n.name not in running]
        check_ports_free(to_start)
        created = not self.exists
        if created:
            self._create(consortium, geth)
        spawned: dict[str, subprocess.Popen[bytes]] = {}
        balancing = monitoring = indexing = Starting([])
        try:
            balancing = balancers.start(self.layout, consortium)  # the nodes peer through them
            for node in to_start:
                spawned[node.name] = self._spawn_agent(node.name)
            balancing.wait()  # while the agents boot
            head, sealed = wait_until_ready(
                self.layout, consortium, self.network, spawned, deadline=t0 + timeout, t0=t0,
                on_progress=on_progress,
            )  # fmt: skip
            # After readiness: started with the agents, they only slowed the boot on 2 cores.
            monitoring = self._monitors_starting(consortium)
            indexing = indexes.start(self.layout, consortium, self._service_stores(consortium))
            monitoring.wait()
            indexing.wait()
        except BaseException:
            log.warning("up failed; stopping the %d agent(s) it started", len(spawned))
            balancing.stop()
            monitoring.stop()
            indexing.stop()
            self._stop_nodes(list(spawned), {n: p.pid for n, p in spawned.items()})
            raise
        return UpResult(
            created=created,
            started=list(spawned),
            already_running=running,
            member_rpc={
                m: [n.rpc_url for n in consortium.nodes if n.member == m]
                for m in consortium.members()
            },
            head=head,
            seconds=time.monotonic() - t0,
            signers_sealed=sealed,
            monitors={r.member: r.url for r in monitors.rows(self.layout, consortium)},
            balancers={r.member: r.url for r in balancers.rows(self.layout, consortium)},
            indexes=indexes.running_urls(self.layout, consortium),
        )

    def create(self, consortium: Consortium, *, joined_from: Mapping[str, str]) -> None:
        """Make the state of a bank that joins a running network, without starting it
        (`local.join`; `up` then starts it)."""
        self._check_socket_paths(consortium)
        self._create(consortium, geth_command(self._runtime(consortium)), joined_from=joined_from)

    def _consortium_for_up(self, config: Path | None) -> Consortium:
        if not self.exists:
            if self.layout.root.exists() and any(self.layout.root.iterdir()):
                raise StateError(
                    "the directory is not empty and holds no consortium",
                    obj=str(self.layout.root),
                    hint="pick an empty or new --state-dir",
                )
            return load_config(config)
        recorded = self.load()
        self._refuse_shared_store()
        if config is not None and load_config(config).canonical() != recorded.canonical():
            raise StateError(
                f"this state dir was created from different settings than {config}",
                obj=str(self.layout.root),
                hint="leave out --config to resume it, or use a new --state-dir "
                "(`poactl destroy` removes this one)",
            )
        return recorded

    def _check_socket_paths(self, consortium: Consortium) -> None:
        check_socket_paths(self.layout, consortium)

    def _create(
        self,
        consortium: Consortium,
        geth: str,
        *,
        joined_from: Mapping[str, str] | None = None,
    ) -> None:
        """The state of a new consortium or joining bank (`creating.create_state`)."""
        create_state(
            self.layout, consortium, vault_of=self._vault, joined_from=joined_from,
            agent_settings=lambda node: self.agent_settings(
                consortium, node, geth, joined_from=joined_from
            ),
        )  # fmt: skip

    def agent_settings(
        self,
        consortium: Consortium,
        node: NodeSpec,
        geth: str,
        *,
        joined_from: Mapping[str, str] | None = None,
    ) -> AgentFile:
        """What the agent of `node` runs with: the local store, its bank's local vault."""
        supervision = consortium.settings.supervision
        return AgentFile(
            member=node.member,
            node=node.name,
            role=node.role,
            state_dir=self.layout.node(node.name).root,
            consortium_file=self.layout.config,
            ports=AgentPorts(
                p2p=node.p2p_port,
                http=node.http_port,
                authrpc=node.authrpc_port,
                health=node.health_port,
                metrics=node.metrics_port,
            ),
            advertise=f"127.0.0.1:{node.peer_port}" if _peers_via_balancer(consortium) else None,
            lease_seconds=supervision.lease_seconds,
            heartbeat_seconds=supervision.heartbeat_seconds,
            store=self.store_settings(
                node.member,
                self._agent_store(node),
                consortium=consortium,
                joined_from=joined_from,
            ),
            vault=self._vault(node.member),
            runtime=self._runtime(consortium).model_copy(update={"geth": geth}),
        )

    def _runtime(self, consortium: Consortium) -> RuntimeSettings:
        """The consortium's runtime as the agents get it: the geth binary given to
        `poactl`, and the Docker API the caller uses now (recorded in every agent.yaml,
        so agents and a later `down` in another shell reach the same one)."""
        runtime = consortium.settings.runtime
        if runtime.kind == "process" and self._geth:
            return runtime.model_copy(update={"geth": self._geth})
        if runtime.kind == "docker" and runtime.docker_host is None:
            return runtime.model_copy(update={"docker_host": os.environ.get("DOCKER_HOST")})
        return runtime

    def _recorded_runtime(self, consortium: Consortium) -> RuntimeSettings:
        """The runtime the agents were given (their agent.yaml), else the consortium's."""
        first = self.layout.node(consortium.nodes[0].name).agent_config
        if first.exists():
            return load_agent_config(first).runtime
        return self._runtime(consortium)

    def _labels(self) -> dict[str, str]:
        """What the agents label their containers with (`down` removes exactly those)."""
        return {"consortium": str(self.layout.config)}

    # -- agents ----------------------------------------------------------------------
    def _agent_running(self, name: str) -> bool:
        return agents.agent_running(self.layout, name)

    def _spawn_agent(self, name: str) -> subprocess.Popen[bytes]:
        return agents.spawn_agent(self.layout, name)

    # -- status ----------------------------------------------------------------------
    def status(self) -> ConsortiumStatus:
        consortium = self.load()
        self._refuse_shared_store()
        return collect_status(
            self.layout, consortium, running=self._agent_running, network=self.network(),
            own_store=lambda member: make_store(self._own_store(member)),
        )  # fmt: skip

    # -- monitors --------------------------------------------------------------------
    def start_monitors(self) -> list[str]:
        """Start each bank's monitor that does not run; the banks whose monitor started."""
        return self._monitors_starting(self.load()).wait()

    def _monitors_starting(self, consortium: Consortium) -> Starting:
        """A monitor follows the chain through its bank's first node."""
        first = {m: next(n.rpc_url for n in consortium.nodes if n.member == m)
                 for m in consortium.members()}  # fmt: skip
        return monitors.start(self.layout, consortium, self._service_stores(consortium), first)

    def _service_stores(self, consortium: Consortium) -> dict[str, StoreSettings]:
        """Each bank's store as its monitor and read index see it (they publish nothing)."""
        return {
            m: self.store_settings(m, publishes=False, consortium=consortium)
            for m in consortium.members()
        }

    def stop_monitors(self) -> list[str]:
        return monitors.stop(self.layout, self.load())

    # -- down / destroy --------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every agent and its geth; keep all data. Returns the nodes stopped."""
        consortium = self.load()
        self.stop_monitors()
        indexes.stop(self.layout, consortium)
        stopped = self._stop_nodes([n.name for n in consortium.nodes])
        balancers.stop(self.layout, consortium)  # last: the nodes peered through them
        removed = remove_containers(self._recorded_runtime(consortium), labels=self._labels())
        if removed:
            log.info("removed containers left behind: %s", ", ".join(removed))
        return stopped

    def _stop_nodes(
        self, names: Sequence[str], agent_pids: Mapping[str, int] | None = None
    ) -> list[str]:
        return agents.stop_nodes(self.layout, names, agent_pids)

    def destroy(self) -> None:
        root = self.layout.root
        if not root.exists():
            return
        if not self.exists and any(root.iterdir()):
            raise StateError(
                "refusing to delete a directory that holds no consortium",
                obj=str(root),
                hint="check --state-dir",
            )
        if self.exists:
            self.down()
        shutil.rmtree(root)

    def node_paths(self, name: str) -> NodePaths:
        self.load().node(name)  # raises for an unknown node
        return self.layout.node(name)


def _peers_via_balancer(consortium: Consortium) -> bool:
    return consortium.settings.balancer is not None and consortium.settings.balancer.peering
