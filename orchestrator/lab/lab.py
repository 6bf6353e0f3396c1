"""One lab: its directory, its network, its banks' stores, its consortium.

    <dir>/lab.json          the lab's prefix and banks (so `poactl lab` finds it again)
    <dir>/consortium.yaml   the consortium file it was made from
    <dir>/s/                the founding banks' state dir (`local` layout)
    <dir>/<bank>/           the state dir of a bank that joined later
    <dir>/azurite/<bank>/   each bank's store (Azurite's files)
    <dir>/storage.key       Azurite's well-known development key (a lab, not a secret)
    <dir>/toxiproxy.log

`Lab.create` makes the directory; `up` builds the network (namespaces, links, stores)
when it is not there, then starts the consortium; `down` stops every process and removes
the network, keeping the files, so `up` resumes the same chain.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.errors import LabError, StateError, ToolError
from orchestrator.lab import netns, topology
from orchestrator.lab.consortium import ACCOUNT_KEY, STORE_PORT, LabConsortium
from orchestrator.lab.topology import Plan
from orchestrator.lab.wan import Endpoint, Wan
from orchestrator.local.consortium import UP_TIMEOUT_SECONDS, UpResult

_REPO_AZURITE = (
    Path(__file__).resolve().parents[2] / ".tools" / "node" / "node_modules" / ".bin"
    / "azurite-blob"
)  # fmt: skip
STORE_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class LabDir:
    root: Path

    @property
    def record(self) -> Path:
        return self.root / "lab.json"

    @property
    def config(self) -> Path:
        return self.root / "consortium.yaml"

    @property
    def founders(self) -> Path:
        return self.root / "s"

    def joined(self, member: str) -> Path:
        return self.root / member

    def azurite(self, member: str) -> Path:
        return self.root / "azurite" / member

    @property
    def key_file(self) -> Path:
        return self.root / "storage.key"

    @property
    def toxiproxy_log(self) -> Path:
        return self.root / "toxiproxy.log"


class Lab:
    def __init__(self, root: Path, plan: Plan, *, joined: list[str], owner_pid: int | None):
        self.dir = LabDir(root)
        self.plan = plan
        self.joined = list(joined)  # banks that joined after the founding, in order
        self.owner_pid = owner_pid  # a test run that owns the lab; None: `poactl lab`
        self.wan = Wan(plan)

    # -- making, finding -----------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, config: Path | None, *, owner_pid: int | None = None) -> Lab:
        """A new lab directory for the consortium file `config` (None: the default)."""
        root = root.expanduser().absolute()
        if (root / "lab.json").exists():
            raise StateError(
                "a lab is already here", obj=str(root),
                hint="`poactl lab up` resumes it; `poactl lab down --purge` deletes it",
            )  # fmt: skip
        consortium = load_config(config)  # a bad file fails before anything is made
        plan = Plan.of(Plan.new_prefix(), [(n.name, n.member) for n in consortium.nodes])
        lab = cls(root, plan, joined=[], owner_pid=owner_pid)
        root.mkdir(parents=True, exist_ok=True)
        lab.dir.config.write_text(consortium.canonical())
        lab.dir.key_file.write_text(ACCOUNT_KEY)
        lab._save()
        return lab

    @classmethod
    def open(cls, root: Path) -> Lab:
        record = LabDir(root.expanduser().absolute()).record
        try:
            doc = json.loads(record.read_text())
        except (OSError, ValueError) as e:
            raise StateError(
                "no lab here", obj=str(record.parent), hint="make one with `poactl lab up`"
            ) from e
        plan = Plan(doc["prefix"], ())
        for bank in doc["banks"]:
            plan = plan.with_bank(bank["member"], bank["nodes"])
        return cls(record.parent, plan, joined=doc["joined"], owner_pid=doc.get("owner_pid"))

    def _save(self) -> None:
        banks = [{"member": b.member, "nodes": list(b.nodes)} for b in self.plan.banks]
        doc = {"prefix": self.plan.prefix, "banks": banks, "joined": self.joined,
               "owner_pid": self.owner_pid}  # fmt: skip
        self.dir.record.write_text(json.dumps(doc, indent=2))

    def consortium(self, member: str | None = None) -> LabConsortium:
        """The state dir `member` belongs to (default: the founders')."""
        root = self.dir.joined(member) if member in self.joined else self.dir.founders
        return LabConsortium(root, self.plan, key_file=self.dir.key_file)

    @property
    def consortia(self) -> list[LabConsortium]:
        return [self.consortium()] + [self.consortium(m) for m in self.joined]

    # -- up and down ---------------------------------------------------------------------
    @property
    def network_up(self) -> bool:
        return self.plan.router in netns.names()

    def up(
        self, *, timeout: float = UP_TIMEOUT_SECONDS, on_progress: Callable[[str], None] = print
    ) -> UpResult:
        """Build the network if it is not there, then start (or resume) the consortium."""
        if not self.network_up:
            topology.remove_stale()
            self.build_network(on_progress)
        result = self.consortium().up(self.dir.config, timeout=timeout, on_progress=on_progress)
        for member in self.joined:
            self.consortium(member).up(timeout=timeout, on_progress=on_progress)
        return result

    def build_network(self, on_progress: Callable[[str], None]) -> None:
        on_progress(f"building the lab's network {self.plan.prefix} "
                    f"({len(self.plan.namespaces)} namespaces)")  # fmt: skip
        reason = netns.unavailable()
        if reason:
            raise LabError(reason, hint="run the lab as root on Linux")
        try:
            topology.build(self.plan, root=self.dir.root, owner_pid=self.owner_pid)
            self.wan.start(self.dir.toxiproxy_log)
            for bank in self.plan.banks:
                self.start_store(bank.member)
            self.wan.link(self.endpoints())
        except BaseException:
            topology.teardown(self.plan.prefix)
            raise

    def add_bank(self, member: str, nodes: list[str]) -> LabConsortium:
        """The network of a bank that joins later (its subnet, hosts, store, links); its
        state dir, for `local.join.join` to fill from its application host."""
        self.plan = self.plan.with_bank(member, nodes)
        self.wan = Wan(self.plan)
        self.joined.append(member)
        self._save()
        topology.record(self.plan.prefix, root=self.dir.root, owner_pid=self.owner_pid)
        topology.add_bank(self.plan, self.plan.bank(member))
        self.start_store(member)
        return self.consortium(member)

    def link_bank(self, member: str, peering_ports: list[int]) -> None:
        """Put the joined bank's endpoints, and everyone's towards it, behind Toxiproxy."""
        bank = self.plan.bank(member)
        mine = [Endpoint(member, bank.store.address, STORE_PORT)]
        mine += [Endpoint(member, bank.balancer.address, p) for p in peering_ports]
        self.wan.link([*self.endpoints(), *mine])

    def endpoints(self) -> list[Endpoint]:
        """What banks reach of each other: each node's peering port on its bank's
        balancer, and each bank's store (its consortium data)."""
        found = []
        for bank in self.plan.banks:
            found.append(Endpoint(bank.member, bank.store.address, STORE_PORT))
            consortium = self.consortium(bank.member)
            if bank.member in self.joined and not consortium.exists:
                continue  # not made yet: `link_bank` adds it
            spec = consortium.load() if consortium.exists else load_config(self.dir.config)
            if spec.settings.balancer is not None and spec.settings.balancer.peering:
                found += [
                    Endpoint(bank.member, bank.balancer.address, n.peer_port)
                    for n in spec.nodes if n.member == bank.member
                ]  # fmt: skip
        return found

    def start_store(self, member: str) -> None:
        """The bank's Azurite on its store host; waits until it answers."""
        if not _REPO_AZURITE.exists():
            raise ToolError(
                "Azurite is not installed", obj=str(_REPO_AZURITE),
                hint="run scripts/setup.sh (it installs Azurite into .tools/node)",
            )  # fmt: skip
        host = self.plan.bank(member).store
        location = self.dir.azurite(member)
        location.mkdir(parents=True, exist_ok=True)
        argv = [
            str(_REPO_AZURITE), "--blobHost", host.address, "--blobPort", str(STORE_PORT),
            "--location", str(location), "--skipApiVersionCheck", "--loose", "--silent",
        ]  # fmt: skip
        with (location / "azurite.log").open("ab") as out, netns.inside(host.ns):
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + STORE_START_TIMEOUT
        while not self._answers(host.ns, host.address, STORE_PORT):
            if process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the store of {member} did not start", obj=str(location),
                               hint=f"read {location / 'azurite.log'}")  # fmt: skip
            time.sleep(0.2)

    @staticmethod
    def _answers(ns: str, address: str, port: int) -> bool:
        with netns.inside(ns):
            try:
                with socket.create_connection((address, port), timeout=0.5):
                    return True
            except OSError:
                return False

    def down(self, *, purge: bool = False) -> None:
        """Stop every agent, balancer and monitor, remove the network; keep the files
        unless `purge`."""
        for consortium in self.consortia:
            if consortium.exists:
                consortium.down()
        topology.teardown(self.plan.prefix)
        topology.unmount_under(self.dir.root)
        if purge:
            shutil.rmtree(self.dir.root, ignore_errors=True)

    # -- faults ----------------------------------------------------------------------
    def cut_banks(self, a: str, b: str) -> None:
        topology.cut_banks(self.plan, a, b)

    def isolate(self, host: str, *, keep_store: bool = True) -> None:
        """Cut `host` (a node, or `<bank>-st`...) from everyone; a node keeps its store."""
        h = self.plan.host(host)
        keep = [self.plan.bank(h.member).store.address] if keep_store else []
        topology.isolate(h, keep=[a for a in keep if a != h.address])

    def cut_from_bank(self, node: str) -> None:
        """Cut a node from the other hosts of its own bank (not from its store)."""
        h = self.plan.host(node)
        bank = self.plan.bank(h.member)
        others = [x.address for x in bank.hosts if x.address not in (h.address, bank.store.address)]
        topology.cut_host(h, peers=others)

    def heal(self) -> None:
        """Take every cut away (links between banks and hosts' own rules)."""
        topology.heal_banks(self.plan)
        for bank in self.plan.banks:
            for host in bank.hosts:
                topology.heal_host(host)
