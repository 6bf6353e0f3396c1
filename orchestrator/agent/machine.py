"""`poactl agent`: the supervisor of one VM (one geth node), as an explicit state machine.

    BOOTING -> WAITING_FOR_NETWORK -> FOLLOWING <-> SEALING
                                          ^            |  lease not renewed in time
                                          +-- FENCED <-+
    (any) -> STOPPING -> STOPPED        (any) -> FATAL: a permanent error

* BOOTING: settings read, backends opened, the node's lock taken, /health served.
* WAITING_FOR_NETWORK: whoever holds the member's *leader* lease creates the member's
  validator identities in the bank's vault and publishes their addresses; the
  founder's leader then publishes the genesis and network information. Every agent
  waits for them, checks the genesis against its own chain, runs `geth init` once,
  publishes its enode and starts geth as a follower.
* FOLLOWING: geth runs and follows the chain; a validator agent tries to take a free
  identity lease every second (a *spare* is a validator agent that finds none free).
* SEALING: the agent holds identity i's lease; the identity's key (in its memory, or
  in the vault in `keys` custody) signs geth's Clique headers through the agent's
  external signer, which checks the lease on every request (`orchestrator.signer`).
* FENCED: a renewal did not get through before `fence_at`; sealing was stopped
  before the lease could expire. The agent seals again only after holding a lease.

Threads: the lease loop renews, acquires and publishes; the watchdog fences on time even
while a store call hangs; the main one supervises geth. Every transition is logged and
written to `agent.json` (`status.AgentStatus`). Transient store and vault errors are
retried; access and configuration errors end the agent (FATAL, exit 1) with a message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from orchestrator.agent import status
from orchestrator.agent.admission import MembershipDuties
from orchestrator.agent.endpoint import AgentMetrics, HealthServer
from orchestrator.agent.fencing import (
    check_lease_fits,
    fence_margin,
    in_flight_seconds,
    settle_signatures,
)
from orchestrator.agent.identity import load_identity, preferred_order
from orchestrator.agent.node import prepare_node, supervise_geth
from orchestrator.agent.paths import NodePaths
from orchestrator.agent.peers import StaticPeers
from orchestrator.agent.sealing import Sealer
from orchestrator.agent.settings import AgentFile
from orchestrator.agent.status import (
    ALLOWED,
    ENDING,
    AgentState,
    AgentStatus,
    CliqueStatus,
    FenceRecord,
    identity_status,
)
from orchestrator.agent.supervisor import Supervisor, node_lock
from orchestrator.agent.votes import discard_all, reconcile
from orchestrator.boundaries import Runtime, Store, Vault
from orchestrator.config import Consortium, load_config
from orchestrator.errors import (
    NodeUnreachable,
    PoaError,
    RpcRefused,
    ServiceUnavailable,
    StateError,
    WaitTimeout,
)
from orchestrator.geth.health import node_problems
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.keys import follower_address
from orchestrator.network.create import (
    NetworkInfo,
    create_network,
    ensure_member_identities,
    publish_member,
    read_member,
    read_network,
)
from orchestrator.network.data import ConsortiumStore
from orchestrator.network.leases import LeaseKeeper
from orchestrator.network.names import (
    admin_key_name,
    heartbeat_blob,
    identity_lease,
    leader_lease,
)
from orchestrator.network.sealed import publish_admin_key
from orchestrator.retry import Backoff
from orchestrator.signer.policy import SigningPolicy
from orchestrator.signer.server import SignerServer

log = logging.getLogger(__name__)

LOOP_SECONDS = 0.5
ACQUIRE_EVERY = 1.0
PEERS_EVERY = 5.0
LEADER_DUTIES_EVERY = 2.0
MAX_BACKOFF_SECONDS = 4.0


class Agent:
    def __init__(
        self,
        settings: AgentFile,
        *,
        store: Store,
        vault: Vault,
        runtime: Runtime,
        geth: str,
        consortium: Consortium | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.node
        self.member = settings.member
        self.consortium = consortium or load_config(settings.consortium_file)
        if self.member not in self.consortium.settings.members:
            raise StateError(
                f"member {self.member!r} is not in the consortium file",
                obj=str(settings.consortium_file),
                hint="members: " + ", ".join(self.consortium.members()),
            )
        self.store, self.vault, self.runtime, self.geth = store, vault, runtime, geth
        self.spec = self.consortium.settings.members[self.member]  # validators, custody
        self.paths = NodePaths(settings.state_dir)
        self.state = AgentState.BOOTING
        self.message = ""
        self.network: NetworkInfo | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()  # the identity lease and the sealer move together
        self.peers = StaticPeers(
            self.paths, node=self.name, host=settings.host, p2p_port=settings.ports.p2p
        )
        self.fences = 0
        self.last_fence: FenceRecord | None = None
        self.leader = LeaseKeeper(
            store, leader_lease(self.member), duration=settings.lease_seconds, holder=self.name,
            margin=0.0,
        )  # fmt: skip
        self.identity_keeper: LeaseKeeper | None = None
        self.metrics = AgentMetrics()
        self.signing = SigningPolicy(
            follower=follower_address(self.name),
            block_period=self.consortium.settings.block_period,
            observe=self.metrics.signer_answered,
        )
        self.sealer = Sealer(
            self.paths.ipc,
            self.signing,
            needs_peers=lambda: len(self.network.all_signers) > 1 if self.network else True,
            static_peers=self.peers.enodes,
            stall_after=max(8.0, 4.0 * self.consortium.settings.block_period),
            on_change=self.write_status,
        )
        self.supervisor: Supervisor | None = None
        self._fatal: PoaError | None = None
        self._duties_done = False
        self.membership = MembershipDuties(
            member=self.member, store=store, vault=vault,
            rpc_url=f"http://{settings.rpc_host}:{settings.ports.http}",
        )  # fmt: skip
        self.backoff = Backoff(self.name, base=LOOP_SECONDS, cap=MAX_BACKOFF_SECONDS)
        self.clique: CliqueStatus | None = None  # the last reconciliation of votes

    # -- state machine -------------------------------------------------------------
    def _transition(self, new: AgentState, message: str = "") -> None:
        with self._lock:
            if new is self.state:
                self.message = message or self.message
                self.write_status()
                return
            if new not in ALLOWED[self.state]:
                raise RuntimeError(f"illegal agent transition {self.state} -> {new}")
            log.info("%s: %s -> %s %s", self.name, self.state, new, message)
            self.state, self.message = new, message
            self.metrics.state(new.value)
            self.write_status()

    def write_status(self) -> None:
        identity, keeper = self.sealer.identity, self.identity_keeper
        held = None
        if identity is not None and keeper is not None:
            held = identity_status(identity.index, identity.address, keeper)
        status.write(
            self.paths.agent_status,
            AgentStatus(
                node=self.name,
                member=self.member,
                role=self.settings.role,
                state=self.state,
                since=datetime.now(UTC).isoformat(timespec="seconds"),
                pid=os.getpid(),
                leader=self.leader.held,
                identity=held,
                last_fence=self.last_fence,
                sealing=self.sealer.sealing,
                fences=self.fences,
                rpc_url=f"http://{self.settings.rpc_host}:{self.settings.ports.http}",
                health_url=f"http://{self.settings.host}:{self.settings.ports.health}/health",
                message=self.message,
                clique=self.clique,
            ),
        )

    # -- run ---------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        threading.Thread(target=self._stop_geth, name="stopping", daemon=True).start()

    def _stop_geth(self) -> None:
        """Settle the identity's signatures while geth still runs, then stop geth."""
        try:
            with self._lock:
                keeper = self.identity_keeper
                self.sealer.fence()
            if keeper is not None and keeper.held and self.network is not None:
                period, signers = self.network.block_period, self._signer_count()
                settle_signatures(keeper, self.paths.ipc, in_flight_seconds(period, signers))
        finally:
            if self.supervisor is not None:
                self.supervisor.request_stop()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: received %s", self.name, signal.Signals(signum).name)
        self.request_stop()

    def run(self) -> int:
        """Run until asked to stop (0) or a permanent error (1)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        with node_lock(self.paths.lock, self.name):
            self.write_status()
            health = HealthServer(
                self.settings.health_host or self.settings.host,
                self.settings.ports.health,
                self._health,
                self.metrics,
            )
            with health, SignerServer(self.paths.signer_ipc, self.signing):
                loops = [
                    threading.Thread(target=self._guard(loop), name=loop.__name__, daemon=True)
                    for loop in (self._lease_loop, self._watchdog, self._votes_loop)
                ]
                for t in loops:
                    t.start()
                try:
                    self._transition(AgentState.WAITING_FOR_NETWORK, "waiting for the network")
                    if self._wait_for_network():
                        self._prepare_node()
                        self._transition(AgentState.FOLLOWING, "geth starting")
                        self._supervise()
                except PoaError as e:
                    self._fatal = self._fatal or e
                finally:
                    self._stop.set()
                    if self.supervisor is not None:
                        self.supervisor.request_stop()
                    for t in loops:
                        t.join(timeout=10)
                    self._shut_down()
        if self._fatal is not None:
            raise self._fatal
        return 0

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        """Run a background loop; a permanent error ends the whole agent."""

        def run() -> None:
            try:
                loop()
            except PoaError as e:
                log.error("%s: %s", self.name, e)
                self._fatal = self._fatal or e
                self.request_stop()

        return run

    def _wait_for_network(self) -> bool:
        started = time.monotonic()
        while not self._stop.is_set():
            if self.network is not None:
                return True
            elapsed = time.monotonic() - started
            if elapsed > self.settings.boot_timeout_seconds:
                raise WaitTimeout(
                    "the consortium's network information did not appear",
                    elapsed=elapsed,
                    last_state=self.backoff.last_problem
                    or "the store answers, but no leader has published the network yet",
                    obj=self.name,
                    hint="check the store and vault settings in the agent file, and that "
                    "the founding member's agents run (every member's leader must publish "
                    "its identities before the founder creates the genesis)",
                )
            self._stop.wait(LOOP_SECONDS)
        return False

    def _prepare_node(self) -> None:
        """Check the published genesis against our chain, init geth once, publish our
        enode; from here on geth can start."""
        assert self.network is not None
        check_lease_fits(
            self.network.block_period, len(self.network.all_signers), self.settings.lease_seconds
        )
        prepare_node(
            self.paths, self.settings, self.network,
            store=self.store, runtime=self.runtime, geth=self.geth,
        )  # fmt: skip
        self.peers.refresh(self.store)

    def _supervise(self) -> None:
        assert self.network is not None
        self.supervisor = supervise_geth(
            self.paths,
            self.settings,
            self.consortium.settings,
            chain_id=self.network.chain_id,
            peers=len(self.peers.enodes()),
            geth=self.geth,
            runtime=self.runtime,
            sealer=self.sealer,
        )
        if self._stop.is_set():
            return
        if self.supervisor.run(handle_signals=False) != 0:
            raise StateError(
                f"geth kept failing: {self.supervisor.last_exit_code=}",
                obj=self.name,
                hint=f"read {self.paths.geth_log}",
            )

    def _shut_down(self) -> None:
        """geth has stopped: give the leases back so a spare takes over at once."""
        self._transition(AgentState.STOPPING, "stopping")
        with self._lock:
            self.sealer.fence()
            for keeper in (self.identity_keeper, self.leader):
                if keeper is not None and keeper.held:
                    try:
                        keeper.release()
                    except PoaError as e:  # it expires on its own
                        log.warning("%s: could not release %s: %s", self.name, keeper.name, e)
            self.identity_keeper = None
        if self._fatal is not None:
            self._transition(AgentState.FATAL, self._fatal.what)
        else:
            self._transition(AgentState.STOPPED, "stopped")

    # -- the lease loop ------------------------------------------------------------------
    def _lease_loop(self) -> None:
        next_acquire = next_peers = next_duties = next_heartbeat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self._keep_identity(acquire=now >= next_acquire)
                if now >= next_acquire:
                    next_acquire = now + ACQUIRE_EVERY
                if now >= next_duties or self.leader.renew_due:
                    self._keep_leader()
                    next_duties = now + LEADER_DUTIES_EVERY
                if self.network is None:
                    self.network = read_network(self.store)
                elif now >= next_peers and self.state is not AgentState.WAITING_FOR_NETWORK:
                    self.peers.refresh(self.store)
                    next_peers = now + PEERS_EVERY
                if now >= next_heartbeat and self.supervisor is not None:
                    self._heartbeat()
                    next_heartbeat = now + self.settings.heartbeat_seconds
            except ServiceUnavailable as e:
                self.metrics.store_error()
                self.backoff.failed(e)
            else:
                self.backoff.succeeded()
            # Back off while they fail; the watchdog fences on time whatever this waits.
            self._stop.wait(self.backoff.pause())

    def _keep_identity(self, *, acquire: bool) -> None:
        keeper = self.identity_keeper
        if keeper is not None and keeper.held:
            if keeper.renew_due:
                self._renew_identity(keeper)
            return
        ready = self.settings.role == "validator" and self.state in (
            AgentState.FOLLOWING,
            AgentState.FENCED,
        )
        if acquire and ready and self.network is not None:
            self._acquire_identity(self.network)

    def _renew_identity(self, keeper: LeaseKeeper) -> None:
        renewed = keeper.renew()
        self.metrics.renewal(ok=renewed)
        if renewed:
            self.write_status()
            return
        with self._lock:  # lost to someone else (broken): stop sealing at once
            if self.identity_keeper is keeper:
                self._fence(f"lost the lease {keeper.name}")

    def _signer_count(self) -> int:
        """Clique's signers for the fencing arithmetic: the genesis's, or more once
        governance has added some (joined banks): the larger count waits longer."""
        founding = len(self.network.all_signers) if self.network else 0
        return max(founding, len(self.clique.signers) if self.clique else 0)

    def _own_signers(self, network: NetworkInfo) -> tuple[str, ...]:
        """The member's identities: in the genesis for a founder; in its published
        descriptor for a bank that joined later (none until its leader publishes it)."""
        if self.member in network.members:
            return network.signers(self.member)
        info = read_member(self.store, self.member)
        return info.signers if info is not None else ()

    def _acquire_identity(self, network: NetworkInfo) -> None:
        signers = self._own_signers(network)
        for i in preferred_order(self.name, len(signers)):
            keeper = LeaseKeeper(
                self.store,
                identity_lease(self.member, i),
                duration=self.settings.lease_seconds,
                holder=self.name,
                margin=fence_margin(network.block_period, self._signer_count()),
            )
            if not keeper.try_acquire():
                continue
            try:
                identity = load_identity(
                    self.vault, self.member, i, signers[i], custody=self.spec.custody
                )
            except BaseException:
                keeper.release()
                raise
            with self._lock:
                self.identity_keeper = keeper
                self.sealer.authorize(identity, keeper)
                self._transition(AgentState.SEALING, f"holds identity {i} ({identity.address})")
            return
        if self.state is AgentState.FENCED:  # the store answers again; every identity is held
            self._transition(AgentState.FOLLOWING, "every identity is held; a spare now")

    def _keep_leader(self) -> None:
        if self.leader.held:
            if self.leader.renew_due and not self.leader.renew():
                self._transition(self.state, "lost the leader lease")
        elif self.leader.try_acquire():
            self._duties_done = False
            self._transition(self.state, "became the member's leader")
        self.metrics.leader(self.leader.held)
        if self.leader.held and not self._duties_done:
            self._duties_done = self._leader_duties()

    def _leader_duties(self) -> bool:
        """Create what is missing of the member's identities and (founder) the network;
        True when nothing is left to do."""
        info = ensure_member_identities(
            self.vault, self.member, self.spec.validators, custody=self.spec.custody
        )
        publish_member(self.store, info)
        admin_key = self.vault.get_secret(admin_key_name(self.member))
        if admin_key is not None:  # others seal vault secrets to it (`network.sealed`)
            publish_admin_key(self.store, self.member, admin_key)
        if isinstance(self.store, ConsortiumStore):
            self.store.publish_directory()  # where the banks it reads publish
        if self.member == self.consortium.members()[0] and self.network is None:
            self.network = create_network(self.store, self.consortium)
        return self.network is not None

    # -- fencing -----------------------------------------------------------------------
    def _watchdog(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                keeper = self.identity_keeper
                if keeper is not None and keeper.held and time.monotonic() >= keeper.fence_at:
                    self._fence(
                        f"could not renew {keeper.name} in time; "
                        f"stopped sealing {keeper.margin:.1f}s before the lease can expire"
                    )

    def _fence(self, why: str) -> None:
        """Stop sealing now (caller holds the lock); stop geth if it does not answer."""
        keeper = self.identity_keeper
        if keeper is not None:
            keeper.forget()
            self.last_fence = FenceRecord(
                at=time.time(),
                lease=keeper.name,
                lease_expires_by=keeper.renewed_wall + keeper.duration,
            )
        self.identity_keeper = None
        self.sealer.fence()  # the signer refuses from now on, whatever geth does
        self.fences += 1
        self.metrics.fenced()
        self._transition(AgentState.FENCED, why)

    def _votes_loop(self) -> None:
        """Once a block period, on its own thread (IPC calls may wait for a slow geth,
        and the lease loop must not): vote Clique's signers toward governance."""
        while not self._stop.wait(self.consortium.settings.block_period):
            try:
                if self.supervisor is not None:  # geth runs: governance can be read
                    self.membership.run(self.network, leader=self.leader.held)
                self._vote()
            except Exception:  # a bad answer must not end the loop: log it, try again
                log.exception("%s: reconciling Clique's votes failed", self.name)
                self._set_clique(None)

    def _vote(self) -> None:
        """While sealing, vote Clique's signers toward governance's decision; otherwise
        cast nothing: a stale vote left in geth's memory must not ride on a later block."""
        if not self.sealer.sealing:
            if self.clique is not None:
                self.signing.allow_votes({})
                with contextlib.suppress(NodeUnreachable, RpcRefused):
                    discard_all(self.paths.ipc)
                self._set_clique(None)
            return
        try:
            votes = reconcile(self.paths.ipc, allow=self.signing.allow_votes)
        except (NodeUnreachable, RpcRefused) as e:
            log.debug("%s: cannot reconcile Clique's votes now: %s", self.name, e)
            self._set_clique(None)  # unknown: `poactl status` must not show a stale match
            return
        self._set_clique(CliqueStatus(
            decided=list(votes.decided) if votes.decided is not None else None,
            signers=list(votes.signers),
            voting=votes.voting,
        ))  # fmt: skip

    def _set_clique(self, clique: CliqueStatus | None) -> None:
        if clique != self.clique:
            if clique is not None and clique.voting:
                log.info("%s: voting in Clique: %s", self.name, clique.voting)
            self.clique = clique
            self.write_status()

    # -- peers, heartbeat, health ---------------------------------------------------------
    def _snapshot(self, *, timeout: float, ask_geth: bool = True) -> dict[str, Any]:
        """This node now, for its heartbeat and /health (the monitor compares hashes)."""
        ipc, latest = self.paths.ipc, ["latest", False]
        head = ipc_probe(ipc, "eth_getBlockByNumber", latest, timeout=timeout) if ask_geth else {}
        head = head if isinstance(head, dict) else {}
        identity = self.sealer.identity
        return {
            "node": self.name,
            "member": self.member,
            "state": self.state.value,
            "leader": self.leader.held,
            "signer": identity.address if identity else None,
            "sealing": self.sealer.sealing,
            "block": int(head["number"], 16) if head else None,
            "hash": head.get("hash"),
        }

    def _heartbeat(self) -> None:
        body = self._snapshot(timeout=2.0)
        peers = ipc_probe(self.paths.ipc, "net_peerCount", [], timeout=2.0)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        body.update(peers=int(peers, 16) if isinstance(peers, str) else None, time=now)
        self.store.write(
            heartbeat_blob(self.member, self.name), json.dumps(body, sort_keys=True).encode()
        )
        if body["block"] is not None:
            self.metrics.chain(body["block"], body["peers"] or 0)

    def _health(self) -> tuple[bool, dict[str, Any]]:
        """For the balancer: geth runs, answers, is synced and has a peer if it needs one."""
        running = self.supervisor is not None and self.supervisor.state.value == "RUNNING"
        body = self._snapshot(timeout=1.0, ask_geth=running)
        body["geth"] = self.supervisor.state.value if self.supervisor else "NOT_STARTED"
        body["problems"] = node_problems(
            self.paths.ipc, bool(self.peers.enodes()), body["block"], running
        )
        return not body["problems"] and self.state not in ENDING, body
