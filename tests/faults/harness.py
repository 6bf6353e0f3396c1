"""The fault lab: a lab consortium, the independent checker and the write load, with the
faults the scenarios inject and the waits and measures they share.

Faults act the way the world does: `kill9` and `freeze` signal a node's agent and geth
(a VM that dies or is paused), the network cuts are iptables rules in the lab's
namespaces, latency and bandwidth are Toxiproxy toxics. Which node to hit is read from
the agents' records (`agent.json`); whether anything went wrong is the checker's call.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.agent import status
from orchestrator.agent.status import AgentState, AgentStatus, GethStatus
from orchestrator.balancer.tokens import read_token
from orchestrator.config import Consortium, NodeSpec
from orchestrator.geth.proc import runs_with_arg
from orchestrator.lab.consortium import LabConsortium
from orchestrator.lab.lab import Lab
from orchestrator.local import balancers
from orchestrator.network.names import tx_key_name
from tests.faults.checker import Checker, ipc_call
from tests.faults.load import Client, Load

STALL_PERIODS = 3  # no new block for this many block periods: the chain has stalled
HEALTH_INTERVAL = 3.0  # HAProxy checks each second, a node is out after two failures
FRESH_SAMPLE = 5.0  # seconds: a head sample older than this says nothing about a node now


def keep_files() -> bool:
    """POACTL_FAULTS_KEEP=1: a lab's files (its logs) stay after it is taken down."""
    return bool(os.environ.get("POACTL_FAULTS_KEEP"))


class Timeout(AssertionError):
    pass


def wait(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.25) -> float:
    """Wait until `predicate()` holds; the seconds it took (Timeout naming `what`)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise Timeout(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - t0


@dataclass
class FaultLab:
    lab: Lab
    checker: Checker
    load: Load | None = None

    # -- making ----------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def running(
        cls, root: Path, config: Path | None, *, timeout: float = 300, rate: float = 2.0
    ) -> Iterator[FaultLab]:
        """A lab made from `config` under `root`, up, watched, under load; all removed
        after (also on failure; with POACTL_FAULTS_KEEP=1 its files, the logs, stay)."""
        lab = Lab.create(root, config, owner_pid=os.getpid())
        fl: FaultLab | None = None
        try:
            lab.up(timeout=timeout, on_progress=lambda _line: None)
            fl = cls(lab, Checker({}))
            fl.checker.add_nodes(fl.ipc_paths())
            fl.checker.start()
            fl.load = fl.make_load(rate).start()
            yield fl
        finally:
            if fl is not None:
                if fl.load is not None:
                    fl.load.stop()
                fl.checker.stop()
            lab.down(purge=not keep_files())

    def make_load(self, rate: float) -> Load:
        clients = []
        for c in self.lab.consortia:
            spec = c.load()
            for member in spec.members():
                if member not in self.own_members(c):
                    continue
                key = c.vault(member).get_secret(tx_key_name(member))
                assert key is not None, f"{member} has no transaction key"
                token = read_token(balancers.token_file(c.layout, member))
                clients.append(Client(
                    member, self.lab.plan.bank(member).app.ns, c.balancer_url(member), token,
                    key.value, spec.settings.chain_id, rate=rate,
                ))  # fmt: skip
        return Load(clients)

    @staticmethod
    def own_members(c: LabConsortium) -> list[str]:
        """The banks whose vaults this state dir holds."""
        return [m for m in c.load().members() if c.layout.vault(m).exists()]

    # -- what runs where ---------------------------------------------------------------
    @property
    def founders(self) -> LabConsortium:
        return self.lab.consortium()

    @property
    def spec(self) -> Consortium:
        return self.founders.load()

    def nodes(self) -> list[tuple[LabConsortium, NodeSpec]]:
        return [(c, n) for c in self.lab.consortia for n in c.load().nodes
                if n.member in self.own_members(c)]  # fmt: skip

    def ipc_paths(self) -> dict[str, Path]:
        return {n.name: c.layout.node(n.name).ipc for c, n in self.nodes()}

    def where(self, node: str) -> LabConsortium:
        return next(c for c, n in self.nodes() if n.name == node)

    def agent(self, node: str) -> AgentStatus | None:
        return status.read(self.where(node).layout.node(node).agent_status, AgentStatus)

    def geth(self, node: str) -> GethStatus | None:
        return status.read(self.where(node).layout.node(node).status, GethStatus)

    def holders(self) -> dict[str, str]:
        """node -> signer, for every live agent that holds an identity and seals."""
        found = {}
        for _, n in self.nodes():
            a = self.agent(n.name)
            if a and a.identity and a.state is AgentState.SEALING and self.agent_alive(n.name):
                found[n.name] = a.identity.signer
        return found

    def agent_alive(self, node: str) -> bool:
        a = self.agent(node)
        paths = self.where(node).layout.node(node)
        return a is not None and runs_with_arg(a.pid, str(paths.agent_config))

    def pids(self, node: str) -> list[int]:
        """The node's agent and geth, if they run (checked against their command lines)."""
        paths = self.where(node).layout.node(node)
        found = []
        a, g = self.agent(node), self.geth(node)
        if a and runs_with_arg(a.pid, str(paths.agent_config)):
            found.append(a.pid)
        if g and g.geth_pid and runs_with_arg(g.geth_pid, str(paths.datadir)):
            found.append(g.geth_pid)
        return found

    def sealer(self, member: str | None = None, *, not_leader: bool = False) -> tuple[str, str]:
        """(node, signer) of a sealing node (of `member`)."""
        for node, signer in sorted(self.holders().items()):
            a = self.agent(node)
            if member and a and a.member != member:
                continue
            if not_leader and a and a.leader:
                continue
            return node, signer
        raise Timeout(f"no sealing node{' of ' + member if member else ''}")

    # -- faults ----------------------------------------------------------------------
    def kill9(self, node: str) -> float:
        for pid in self.pids(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    def freeze(self, node: str) -> list[int]:
        found = self.pids(node)
        for pid in found:
            os.kill(pid, signal.SIGSTOP)
        return found

    @staticmethod
    def thaw(pids: list[int]) -> float:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        return time.monotonic()

    def restart(self, node: str) -> None:
        """Start the node's agent again (after kill -9; it rejoins, as a spare if its
        identity was taken over)."""
        self.wait_dead(node)
        self.where(node).start_agent(node)

    def wait_dead(self, node: str) -> None:
        wait(lambda: not self.pids(node), 30, f"{node}'s processes to end")

    # -- measures --------------------------------------------------------------------
    @property
    def period(self) -> float:
        return float(self.spec.settings.block_period)

    def head(self) -> int:
        return self.checker.highest()

    def stalled_since(self, t_fault: float, *, timeout: float) -> float | None:
        """Wait (up to `timeout`) for the chain to stall after `t_fault`: the seconds from
        the fault to the last block before the stall, or None if it kept going."""
        quiet = STALL_PERIODS * self.period
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blocks = self.checker.blocks()
            last = max((b.first_seen for b in blocks), default=t_fault)
            if time.monotonic() - last >= quiet:
                return max(0.0, last - t_fault)
            time.sleep(0.25)
        return None

    def first_block_after(self, t: float, *, timeout: float) -> float:
        """Seconds from `t` until a block above every height known at `t` appears."""
        top = self.head()
        wait(lambda: self.checker.first_block_above(top, t) is not None, timeout,
             f"a block above {top}")  # fmt: skip
        seen = self.checker.first_block_above(top, t)
        assert seen is not None
        return seen - t

    def all_at_head_after(
        self, t: float, *, timeout: float, nodes: list[str] | None = None
    ) -> float:
        """Seconds from `t` until every node's head is one block, above the head at `t`."""
        names = nodes or [n.name for _, n in self.nodes()]
        top = self.head()

        def together() -> bool:
            heads = self.checker.heads()
            return self.checker.all_at_one_head(names, since=t) and heads[names[0]].number > top

        wait(together, timeout, f"every node at one head above {top}", poll=0.1)
        return time.monotonic() - t

    def healthy(self) -> bool:
        """Every identity held and sealing by a live agent, and every node at the head."""
        identities = self.spec.identities + sum(
            c.load().settings.members[m].validators for c in self.lab.consortia[1:]
            for m in self.own_members(c)
        )  # fmt: skip
        if len(set(self.holders().values())) < identities:
            return False
        heads = self.checker.heads()
        names = [n.name for _, n in self.nodes()]
        fresh = time.monotonic() - FRESH_SAMPLE  # a restarted node's old sample is no answer
        numbers = [heads[n].number for n in names if n in heads and heads[n].t >= fresh]
        return len(numbers) == len(names) and max(numbers) - min(numbers) <= 1

    def wait_healthy(self, timeout: float = 180) -> float:
        return wait(self.healthy, timeout, "every identity sealing and every node at the head")

    def block_of(self, node: str, tx: str) -> str | None:
        receipt = ipc_call(self.ipc_paths()[node], "eth_getTransactionReceipt", [tx])
        return None if receipt is None else str(receipt["blockHash"])
