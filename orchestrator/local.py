"""A consortium on one machine: create its state, bring it up, report on it, stop it.

`up` creates the state dir atomically the first time (keys, genesis, `geth init` are
all made in a temporary sibling and renamed into place), then starts one detached
supervisor process per node (`poactl supervise`) and returns once every validator has
sealed a block. Everything is validated before anything starts, and a failed `up`
stops what it started, so a bad run leaves nothing half-made behind.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bootstrap import create_state
from orchestrator.config import Consortium, NodeSpec, load_config, parse_config
from orchestrator.errors import ConfigError, StateError, WaitTimeout
from orchestrator.geth import GethNode, geth_argv, locate_geth
from orchestrator.health import check_node, ipc_call
from orchestrator.keys import (
    keystore_address,
)
from orchestrator.layout import UNIX_SOCKET_PATH_MAX, NodePaths, StateLayout
from orchestrator.proc import runs_with_arg, stop_pid
from orchestrator.report import MAX_LAG_BLOCKS, ConsortiumStatus, NodeStatus
from orchestrator.runtime.process import ProcessRuntime
from orchestrator.sealing import SealingGate
from orchestrator.statefile import read_json
from orchestrator.supervisor import RestartPolicy, SupervisedNode, Supervisor, log_tail

log = logging.getLogger(__name__)

SUPERVISE_COMMAND = "supervise"
UP_TIMEOUT_SECONDS = 90.0
# The supervisor gets SIGTERM and stops geth itself (which may take geth's own
# SIGINT/TERM/KILL sequence); only then do we kill the supervisor.
SUPERVISOR_STOP = ((signal.SIGTERM, 40.0), (signal.SIGKILL, 5.0))


@dataclass(frozen=True)
class UpResult:
    created: bool
    started: list[str]
    already_running: list[str]
    member_rpc: dict[str, list[str]]
    head: int
    seconds: float
    signers_sealed: dict[str, int] = field(default_factory=dict)


class LocalConsortium:
    """One consortium in one state directory."""

    def __init__(self, state_dir: Path, *, geth: str | None = None) -> None:
        self.layout = StateLayout(state_dir.expanduser().absolute())
        self._geth = geth

    # -- reading state ---------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.layout.config.is_file() and self.layout.network.is_file()

    def load(self) -> Consortium:
        if not self.exists:
            raise StateError(
                "no consortium here",
                obj=str(self.layout.root),
                hint="run `poactl up` to create one, or pass the right --state-dir",
            )
        return parse_config(self.layout.config.read_text(), source=str(self.layout.config))

    def signers(self) -> dict[str, str]:
        """Node name -> signer address, for validators."""
        network = read_json(self.layout.network) or {}
        return {n["name"]: n["signer"] for n in network.get("nodes", []) if n.get("signer")}

    def static_peers(self, name: str) -> list[str]:
        """The enodes of every other node: the peers `name` keeps."""
        network = read_json(self.layout.network) or {}
        return [n["enode"] for n in network.get("nodes", []) if n["name"] != name]

    # -- up --------------------------------------------------------------------------
    def up(self, config: Path | None = None, *, timeout: float = UP_TIMEOUT_SECONDS) -> UpResult:
        t0 = time.monotonic()
        consortium = self._consortium_for_up(config)
        geth = locate_geth(self._geth)
        self._check_socket_paths(consortium)
        running = [n.name for n in consortium.nodes if self._supervised(n.name)]
        to_start = [n for n in consortium.nodes if n.name not in running]
        _check_ports_free(to_start)
        created = not self.exists
        if created:
            self._create(consortium, geth)
        spawned: dict[str, int] = {}  # node -> supervisor pid
        try:
            for node in to_start:
                spawned[node.name] = self._spawn_supervisor(node.name, geth)
            head, sealed = self._wait_until_ready(consortium, list(spawned), t0 + timeout, t0)
        except BaseException:
            log.warning("up failed; stopping the %d node(s) it started", len(spawned))
            self._stop_nodes(list(spawned), spawned)
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
        )

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
        if config is not None and load_config(config).canonical() != recorded.canonical():
            raise StateError(
                f"this state dir was created from different settings than {config}",
                obj=str(self.layout.root),
                hint="leave out --config to resume it, or use a new --state-dir "
                "(`poactl destroy` removes this one)",
            )
        return recorded

    def _check_socket_paths(self, consortium: Consortium) -> None:
        for node in consortium.nodes:
            ipc = self.layout.node(node.name).ipc
            if len(str(ipc)) > UNIX_SOCKET_PATH_MAX:
                raise StateError(
                    f"geth's IPC socket path would be {len(str(ipc))} characters; "
                    f"unix sockets allow {UNIX_SOCKET_PATH_MAX}",
                    obj=str(ipc),
                    hint="use a shorter --state-dir",
                )

    # -- creating state ---------------------------------------------------------------
    def _create(self, consortium: Consortium, geth: str) -> None:
        """Keys, genesis and `geth init` for every node, made aside and renamed into place."""
        root = self.layout.root
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.creating-", dir=root.parent))
        try:
            create_state(StateLayout(staging), consortium, geth)
            if root.exists():
                root.rmdir()  # empty, checked in _consortium_for_up
            staging.rename(root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("created consortium state in %s", root)

    # -- supervisors -----------------------------------------------------------------
    def _supervised(self, name: str) -> bool:
        """Whether a supervisor holds this node's lock right now."""
        lock = self.layout.node(name).lock
        if not lock.exists():
            return False
        with lock.open("r") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    def _spawn_supervisor(self, name: str, geth: str) -> int:
        paths = self.layout.node(name)
        argv = [
            sys.executable, "-m", "orchestrator.cli", SUPERVISE_COMMAND,
            "--state-dir", str(self.layout.root), "--node", name, "--geth", geth,
        ]  # fmt: skip
        with paths.supervisor_log.open("ab") as out:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `poactl up`, untouched by its Ctrl-C
            ).pid

    def supervise(self, name: str) -> int:
        """Run in the foreground as node `name`'s supervisor (what `up` spawns)."""
        consortium = self.load()
        node = consortium.node(name)
        paths = self.layout.node(name)
        geth = locate_geth(self._geth)
        settings = consortium.settings
        signer = self._checked_signer(name, paths) if node.is_validator else None
        argv = geth_argv(
            geth,
            GethNode(
                datadir=paths.datadir,
                config_file=paths.geth_config,
                ipc_path=paths.ipc,
                network_id=settings.chain_id,
                http_port=node.http_port,
                authrpc_port=node.authrpc_port,
                max_peers=max(8, 2 * len(consortium.nodes)),
                signer=signer,
                gas_limit=settings.gas_limit,
            ),
        )
        supervised = SupervisedNode(
            name=name,
            argv=argv,
            datadir=paths.datadir,
            log_file=paths.geth_log,
            status_file=paths.status,
            lock_file=paths.lock,
            sealing_gate=SealingGate(
                paths.ipc,
                signer=str(signer),
                password_file=paths.password,
                needs_peers=len(consortium.validators) > 1,
                static_peers=self.static_peers(name),
                stall_after=max(8.0, 4.0 * settings.block_period),
            )
            if node.is_validator
            else None,
        )
        policy = RestartPolicy(
            max_restarts=settings.supervision.max_restarts,
            backoff_max=settings.supervision.backoff_max_seconds,
        )
        return Supervisor(supervised, ProcessRuntime(), policy).run()

    def _checked_signer(self, name: str, paths: NodePaths) -> str:
        """The keystore's address, which must be the signer the genesis names."""
        address = keystore_address(paths.keystore)
        recorded = self.signers().get(name)
        if recorded is None or recorded.lower() != address.lower():
            raise StateError(
                f"keystore holds {address} but network.json names signer {recorded}",
                obj=str(paths.keystore),
                hint="the state dir is damaged; restore it from backup or `poactl destroy` it",
            )
        return address

    def _wait_until_ready(
        self, consortium: Consortium, started: Sequence[str], deadline: float, t0: float
    ) -> tuple[int, dict[str, int]]:
        """Wait until every validator seals a block after we first see the chain, and
        every node is within MAX_LAG_BLOCKS of the head (a node that does not seal
        takes peers' blocks only after its first sync, which geth runs every 10 s)."""
        signers = self.signers()
        wanted = {addr.lower(): name for name, addr in signers.items()}
        sealed: dict[str, int] = {}  # signer name -> first block seen sealed by it
        baseline: int | None = None
        checked = 0
        last = "no node answered yet"
        while True:
            self._raise_if_supervisor_died(started, t0)
            for node in consortium.validators:
                ipc = self.layout.node(node.name).ipc
                head = ipc_call(ipc, "eth_blockNumber", [], timeout=2.0)
                if head is None:
                    continue
                head_n = int(head, 16)
                if baseline is None:
                    baseline = checked = head_n
                while checked < head_n:
                    signer = ipc_call(ipc, "clique_getSigner", [hex(checked + 1)], timeout=2.0)
                    if signer is None:
                        break
                    checked += 1
                    name = wanted.get(str(signer).lower())
                    if name is not None:
                        sealed.setdefault(name, checked)
                break
            missing = sorted(set(signers) - set(sealed))
            lagging = [] if missing else self._lagging(consortium)
            if baseline is not None:
                last = (
                    f"head {checked}, sealed since block {baseline}: "
                    f"{', '.join(sorted(sealed)) or 'none'}; "
                    + (f"waiting for: {', '.join(missing)}" if missing else "all sealed")
                    + (f"; catching up: {', '.join(lagging)}" if lagging else "")
                )
            if not missing and not lagging:
                return checked, sealed
            if time.monotonic() > deadline:
                tails = [
                    f"[{name}] {line}"
                    for name in missing or lagging
                    for line in log_tail(self.layout.node(name).geth_log, 5)
                ]
                raise WaitTimeout(
                    "not every validator sealed a block in time"
                    if missing
                    else "not every node caught up with the head in time",
                    elapsed=time.monotonic() - t0,
                    last_state=last,
                    log_tail=tails,
                    obj=str(self.layout.root),
                    hint="see the nodes' geth.log under nodes/<name>/; "
                    "a slow machine may need a longer --timeout",
                )
            time.sleep(0.25)

    def _lagging(self, consortium: Consortium) -> list[str]:
        """Nodes that do not answer or are more than MAX_LAG_BLOCKS behind the highest."""
        heads = {
            n.name: ipc_call(self.layout.node(n.name).ipc, "eth_blockNumber", [], timeout=2.0)
            for n in consortium.nodes
        }
        numbers = {name: int(h, 16) for name, h in heads.items() if isinstance(h, str)}
        top = max(numbers.values(), default=0)
        return [n for n in heads if numbers.get(n, -1) < top - MAX_LAG_BLOCKS]

    def _raise_if_supervisor_died(self, started: Sequence[str], t0: float) -> None:
        for name in started:
            status = read_json(self.layout.node(name).status) or {}
            if status.get("state") == "FATAL":
                raise WaitTimeout(
                    f"the supervisor of {name} gave up: {status.get('message')}",
                    elapsed=time.monotonic() - t0,
                    last_state="FATAL",
                    log_tail=log_tail(self.layout.node(name).geth_log, 10),
                    obj=name,
                    hint=f"read {self.layout.node(name).geth_log}",
                )

    # -- status ----------------------------------------------------------------------
    def status(self) -> ConsortiumStatus:
        consortium = self.load()
        signers = self.signers()
        stall_after = max(10.0, 5.0 * consortium.settings.block_period)
        many = len(consortium.nodes) > 1

        def one(node: NodeSpec) -> NodeStatus:
            paths = self.layout.node(node.name)
            state = self._supervisor_state(paths)
            sealing = state == "RUNNING" and bool((read_json(paths.status) or {}).get("sealing"))
            health = check_node(
                node.rpc_url,
                paths.ipc,
                signer=signers.get(node.name),
                expect_peers=many,
            )
            return NodeStatus(node, signers.get(node.name), state, sealing, health)

        with ThreadPoolExecutor(max_workers=8) as pool:
            nodes = list(pool.map(one, consortium.nodes))
        top = max((n.health.block for n in nodes if n.health.block is not None), default=0)
        ages = [n.health.head_age for n in nodes if n.health.head_age is not None]
        stalled = min(ages) if ages and min(ages) > stall_after else None
        nodes = [
            dataclasses.replace(
                n,
                behind=top - n.health.block if n.health.block is not None else 0,
                chain_stalled_for=stalled,
            )
            for n in nodes
        ]
        return ConsortiumStatus(consortium.settings.chain_id, self.layout.root, nodes)

    def _supervisor_state(self, paths: NodePaths) -> str:
        status = read_json(paths.status) or {}
        state = str(status.get("state", "STOPPED"))
        if state in ("STOPPED", "FATAL"):
            return state
        return state if self._supervised(paths.root.name) else "DEAD"

    # -- down / destroy --------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every node's supervisor and geth; keep all data. Returns nodes stopped."""
        consortium = self.load()
        return self._stop_nodes([n.name for n in consortium.nodes])

    def _stop_nodes(
        self, names: Sequence[str], supervisor_pids: Mapping[str, int] | None = None
    ) -> list[str]:
        """Stop supervisors (by the pid we spawned, else the one in status.json), then geth."""

        def stop(name: str) -> str | None:
            paths = self.layout.node(name)
            status = read_json(paths.status) or {}
            stopped = False
            pid = (supervisor_pids or {}).get(name, status.get("supervisor_pid"))
            if isinstance(pid, int) and runs_with_arg(pid, SUPERVISE_COMMAND):
                stop_pid(pid, SUPERVISOR_STOP)
                stopped = True
            geth_pid = (read_json(paths.status) or {}).get("geth_pid")
            if isinstance(geth_pid, int) and runs_with_arg(geth_pid, str(paths.datadir)):
                stop_pid(geth_pid)  # its supervisor was killed and left it behind
                stopped = True
            return name if stopped else None

        with ThreadPoolExecutor(max_workers=8) as pool:
            return [n for n in pool.map(stop, names) if n]

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


def _check_ports_free(nodes: Sequence[NodeSpec]) -> None:
    for node in nodes:
        for kind, port in (
            ("p2p", node.p2p_port),
            ("http", node.http_port),
            ("authrpc", node.authrpc_port),
        ):
            if not port_is_free(port):
                raise ConfigError(
                    f"port clash: {kind} port {port} of node {node.name} is already in use "
                    "on 127.0.0.1",
                    obj=f"ports.{kind}",
                    hint="stop what listens there (another consortium? `poactl down`), "
                    "or change the base port in the consortium file",
                )


def port_is_free(port: int) -> bool:
    """Whether a TCP listener could bind 127.0.0.1:`port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
