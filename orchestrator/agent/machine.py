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

Threads: the lease loop renews and acquires the leases (`holding`, `leading`), reads the
network, refreshes the peers (`peers`) and writes heartbeats (`reporting`); the watchdog
fences on time even while a store call hangs; the votes thread runs the membership
duties (`admission`) and Clique's votes (`votes`); the main one supervises geth
(`node`, `supervisor`). Every transition is logged and written to `agent.json`
(`status.AgentStatus`). Transient store and vault errors are retried; access and
configuration errors end the agent (FATAL, exit 1) with a message.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from orchestrator.agent import status
from orchestrator.agent.admission import MembershipDuties
from orchestrator.agent.chainview import ChainView
from orchestrator.agent.duties import Duty
from orchestrator.agent.endpoint import AgentMetrics, HealthServer
from orchestrator.agent.fencing import check_lease_fits, in_flight_seconds, settle_signatures
from orchestrator.agent.holding import WATCHDOG_SECONDS, IdentityHolder, release_lease
from orchestrator.agent.leading import Leadership
from orchestrator.agent.node import prepare_node, supervise_geth
from orchestrator.agent.paths import NodePaths
from orchestrator.agent.peers import StaticPeers
from orchestrator.agent.recovery import NodeCare
from orchestrator.agent.reporting import NodeReport
from orchestrator.agent.sealing import Sealer
from orchestrator.agent.settings import AgentFile
from orchestrator.agent.status import (
    ALLOWED,
    ENDING,
    AgentState,
    AgentStatus,
    identity_status,
)
from orchestrator.agent.supervisor import Supervisor, node_lock
from orchestrator.agent.votes import CliqueVoter
from orchestrator.boundaries import Runtime, Store, Vault
from orchestrator.config import Consortium, load_config
from orchestrator.errors import PoaError, ServiceUnavailable, StateError, WaitTimeout
from orchestrator.geth.ipc import ipc_request
from orchestrator.geth.keys import follower_address
from orchestrator.logs import last_failure
from orchestrator.network.create import NetworkInfo, read_network
from orchestrator.retry import Backoff, Recurring
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
        self.paths = NodePaths(settings.state_dir)
        self.state = AgentState.BOOTING
        self.message = ""
        self.network: NetworkInfo | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()  # the identity lease, the sealer and agent.json
        self.peers = StaticPeers(
            self.paths, member=self.member, node=self.name, host=settings.host,
            p2p_port=settings.ports.p2p,
        )  # fmt: skip
        self.metrics = AgentMetrics()
        self.leader = Leadership(
            store=store, vault=vault, member=self.member, node=self.name,
            consortium=self.consortium, lease_seconds=settings.lease_seconds,
            metrics=self.metrics, on_message=lambda why: self._transition(self.state, why),
        )  # fmt: skip
        self.signing = SigningPolicy(
            follower=follower_address(self.name),
            block_period=self.consortium.settings.block_period,
            observe=self.metrics.signer_answered,
            published=self._has_block,
        )
        self.sealer = Sealer(
            self.paths.ipc,
            self.signing,
            needs_peers=lambda: len(self.network.all_signers) > 1 if self.network else True,
            on_change=self.write_status,
        )
        self.holder = IdentityHolder(
            store=store, vault=vault, member=self.member, node=self.name,
            spec=self.consortium.settings.members[self.member],
            lease_seconds=settings.lease_seconds, sealer=self.sealer, metrics=self.metrics,
            lock=self._lock, state=lambda: self.state, transition=self._transition,
            write_status=self.write_status, signer_count=self._signer_count,
        )  # fmt: skip
        self.voter = CliqueVoter(
            self.paths.ipc, node=self.name, allow=self.signing.allow_votes,
            sealing=lambda: self.sealer.sealing, on_change=self.write_status,
        )  # fmt: skip
        self.chain = ChainView(
            (self.member, self.name), period=self.consortium.settings.block_period,
            heartbeat_seconds=settings.heartbeat_seconds,
        )  # fmt: skip
        self.report = NodeReport(
            self.paths, store=store, metrics=self.metrics, chain=self.chain, facts=self._facts
        )
        self.care = NodeCare(
            self.paths.ipc, self.sealer, self.chain, peers=self.peers.enodes,
            period=self.consortium.settings.block_period,
        )  # fmt: skip
        self.duties = [
            Duty("lease loop", self._lease_loop, **self._duty_options()),
            Duty("watchdog", self._watchdog, **self._duty_options(), on_death=self._watchdog_died),
            Duty("votes round", self._votes_loop, **self._duty_options()),
        ]
        self._votes_failures = Recurring(log, self.name, level=logging.ERROR, traceback=True)
        self.supervisor: Supervisor | None = None
        self._fatal: PoaError | None = None
        self.membership = MembershipDuties(
            member=self.member, store=store, vault=vault,
            rpc_url=f"http://{settings.rpc_host}:{settings.ports.http}",
        )  # fmt: skip
        self.backoff = Backoff(self.name, base=LOOP_SECONDS, cap=MAX_BACKOFF_SECONDS)

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
        """Write `agent.json` from the state as it is now, under the agent's lock: the
        lease loop, the watchdog, the votes round and the node's care all write it, and
        a snapshot taken before a fence must never land after the fence's."""
        with self._lock:
            identity, keeper = self.sealer.identity, self.holder.keeper
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
                    last_fence=self.holder.last_fence,
                    sealing=self.sealer.sealing,
                    fences=self.holder.fences,
                    rpc_url=f"http://{self.settings.rpc_host}:{self.settings.ports.http}",
                    health_url=f"http://{self.settings.host}:{self.settings.ports.health}/health",
                    message=self.message,
                    clique=self.voter.clique,
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
                keeper = self.holder.keeper
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
                for duty in self.duties:
                    duty.start()
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
                    for duty in self.duties:
                        duty.join(timeout=10)
                    self._shut_down()
        if self._fatal is not None:
            raise self._fatal
        return 0

    def _duty_options(self) -> dict[str, Any]:
        """A background duty: a permanent error ends the whole agent; any other death
        makes it unhealthy while the duty restarts (`duties`)."""
        return {"who": self.name, "stop": self._stop, "on_fatal": self._end}

    def _end(self, error: PoaError) -> None:
        log.error("%s: %s", self.name, error)
        self._fatal = self._fatal or error
        self.request_stop()

    def _watchdog_died(self) -> None:
        """No fence could come on time without the watchdog: fence now, to be safe."""
        with self._lock:
            if self.holder.keeper is not None:
                self.holder.fence("the watchdog died; fenced to be safe until it runs again")

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
            sealer=self.care,
        )
        if self._stop.is_set():
            return
        if self.supervisor.run(handle_signals=False) != 0:
            said = last_failure(self.paths.geth_log)
            raise StateError(
                f"geth kept failing: it stopped {self.supervisor.restarts + 1} times in a row "
                f"(last exit code {self.supervisor.last_exit_code})"
                + (f"; geth said: {said}" if said else ""),
                obj=self.name,
                hint=f"read {self.paths.geth_log} (a full disk, a port another program "
                "took, a datadir from another network); fix it, then start the agent again",
            )

    def _shut_down(self) -> None:
        """geth has stopped: give the leases back so a spare takes over at once."""
        self._transition(AgentState.STOPPING, "stopping")
        with self._lock:
            self.holder.release()
            release_lease(self.leader.keeper, self.name)
        if self._fatal is not None:
            self._transition(AgentState.FATAL, self._fatal.what)
        else:
            self._transition(AgentState.STOPPED, "stopped")
        if self.supervisor is not None:  # the monitor sees how it ended, not "SEALING"
            try:
                self.report.heartbeat(ask_geth=False, message=self.message)
            except PoaError as e:
                log.warning("%s: could not write a last heartbeat: %s", self.name, e)

    # -- background loops ----------------------------------------------------------------
    def _lease_loop(self) -> None:
        """Renew and acquire leases, do the leader's duties, read the network, refresh
        the peers and write heartbeats; back off while the store fails."""
        next_acquire = next_peers = next_duties = next_heartbeat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                ready = self.settings.role == "validator" and self.state in (
                    AgentState.FOLLOWING,
                    AgentState.FENCED,
                )
                self.holder.keep(self.network, acquire=now >= next_acquire, ready=ready)
                if now >= next_acquire:
                    next_acquire = now + ACQUIRE_EVERY
                if now >= next_duties or self.leader.renew_due:
                    self.network = self.leader.keep(self.network)
                    next_duties = now + LEADER_DUTIES_EVERY
                if self.network is None:
                    self.network = read_network(self.store)
                elif now >= next_peers and self.state is not AgentState.WAITING_FOR_NETWORK:
                    self.peers.refresh(self.store)
                    next_peers = now + PEERS_EVERY
                if now >= next_heartbeat and self.supervisor is not None:
                    self.report.heartbeat()
                    self.chain.refresh(self.store, time.time())  # the others' heads
                    next_heartbeat = now + self.settings.heartbeat_seconds
            except ServiceUnavailable as e:
                self.metrics.store_error()
                self.backoff.failed(e)
            else:
                self.backoff.succeeded()
            # Back off while they fail; the watchdog fences on time whatever this waits.
            self._stop.wait(self.backoff.pause())

    def _watchdog(self) -> None:
        while not self._stop.wait(WATCHDOG_SECONDS):
            self.holder.check_deadline()

    def _votes_loop(self) -> None:
        """Once a block period, on its own thread (IPC calls may wait for a slow geth,
        and the lease loop must not): vote Clique's signers toward governance."""
        while not self._stop.wait(self.consortium.settings.block_period):
            try:
                if self.supervisor is not None:  # geth runs: governance can be read
                    self.membership.run(self.network, leader=self.leader.held)
                self.voter.vote()
            except Exception as e:  # a bad answer must not end the loop: say so, try again
                self._votes_failures.failed("reconciling Clique's votes failed", e)
                self.voter.set(None)
            else:
                self._votes_failures.succeeded()

    def _signer_count(self) -> int:
        """Clique's signers for the fencing arithmetic: the genesis's, or more once
        governance has added some (joined banks): the larger count waits longer."""
        founding = len(self.network.all_signers) if self.network else 0
        clique = self.voter.clique
        return max(founding, len(clique.signers) if clique else 0)

    def _has_block(self, height: int) -> bool | None:
        """Whether geth's chain holds a block at `height` (None: geth cannot tell)."""
        try:
            block = ipc_request(self.paths.ipc, "eth_getBlockByNumber", [hex(height), False])
        except PoaError:
            return None
        return block is not None

    # -- what the node tells --------------------------------------------------------------
    def _facts(self) -> dict[str, Any]:
        identity = self.sealer.identity
        return {
            "node": self.name,
            "member": self.member,
            "state": self.state.value,
            "leader": self.leader.held,
            "signer": identity.address if identity else None,
            "sealing": self.sealer.sealing,
        }

    def _health(self) -> tuple[bool, dict[str, Any]]:
        supervisor = self.supervisor
        healthy, body = self.report.health(
            geth_state=supervisor.state.value if supervisor else None,
            needs_peers=bool(self.peers.enodes()),
            ending=self.state in ENDING,
        )
        dead = [problem for duty in self.duties if (problem := duty.problem)]
        body["problems"] += dead
        return healthy and not dead, body
