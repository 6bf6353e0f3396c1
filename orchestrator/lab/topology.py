"""The lab's network: every host in a namespace of its own, each bank on its own subnet
behind a bridge, the banks joined by a router namespace (the WAN).

    <prefix>-rt                 the router: one bridge per bank (br<i>, 10.77.<i>.1/24),
                                IP forwarding, Toxiproxy (`lab.wan`) and the partition rules
    <prefix>-<bank>-lb          the bank's balancer and monitor       10.77.<i>.2
    <prefix>-<bank>-st          the bank's store (Azurite)            10.77.<i>.3
    <prefix>-<bank>-app         the bank's applications               10.77.<i>.4
    <prefix>-<node>             one node: its agent and geth          10.77.<i>.<10+k>

Traffic inside a bank stays on its bridge; traffic between banks crosses the router,
where it can be slowed (`lab.wan`) or cut (`cut_banks`). A host can also be cut from
others by rules in its own namespace (`isolate`, `cut_host`).

Every name starts with the lab's prefix (`pl` and six hex digits). Each lab records
itself in /run/poactl-lab/<prefix>.json: its owner process (a test run) or its state dir
(`poactl lab up`); `remove_stale` removes the labs whose owner is gone, so a crashed run
leaves nothing behind for long. `teardown` removes one lab: its processes, namespaces,
and with them every veth, bridge and rule.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from orchestrator.lab import netns

LAB_NET = ipaddress.IPv4Network("10.77.0.0/16")
RECORDS = Path("/run/poactl-lab")
PREFIX = re.compile(r"^pl[0-9a-f]{6}$")
CUT = "POACTL-CUT"  # the router's chain of partition rules
CUT_IN, CUT_OUT = "POACTL-IN", "POACTL-OUT"  # a host's own rules


@dataclass(frozen=True)
class Host:
    """One machine of the lab: its namespace, address and the router's end of its link."""

    name: str
    member: str
    ns: str
    address: str
    router_dev: str


@dataclass(frozen=True)
class Bank:
    member: str
    index: int  # the subnet: 10.77.<index>.0/24
    prefix: str
    nodes: tuple[str, ...]

    @property
    def subnet(self) -> str:
        return f"10.77.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.77.{self.index}.1"

    def _host(self, role: str, last: int, dev: str) -> Host:
        ns = f"{self.prefix}-{role}"
        return Host(role, self.member, ns, f"10.77.{self.index}.{last}", f"v{self.index}{dev}")

    @property
    def balancer(self) -> Host:
        return self._host(f"{self.member}-lb", 2, "lb")

    @property
    def store(self) -> Host:
        return self._host(f"{self.member}-st", 3, "st")

    @property
    def app(self) -> Host:
        return self._host(f"{self.member}-app", 4, "ap")

    def node(self, name: str) -> Host:
        k = self.nodes.index(name)
        return self._host(name, 10 + k, f"n{k}")

    @property
    def hosts(self) -> list[Host]:
        return [self.balancer, self.store, self.app] + [self.node(n) for n in self.nodes]


@dataclass(frozen=True)
class Plan:
    """Names and addresses of one lab; pure data."""

    prefix: str
    banks: tuple[Bank, ...]

    @staticmethod
    def new_prefix() -> str:
        return "pl" + secrets.token_hex(3)

    @classmethod
    def of(cls, prefix: str, nodes: Sequence[tuple[str, str]]) -> Plan:
        """A plan for (node, member) pairs, banks numbered in order of appearance."""
        plan = cls(prefix, ())
        for member in dict.fromkeys(m for _, m in nodes):
            plan = plan.with_bank(member, [n for n, m in nodes if m == member])
        return plan

    def with_bank(self, member: str, nodes: Sequence[str]) -> Plan:
        index = len(self.banks) + 1
        return Plan(self.prefix, (*self.banks, Bank(member, index, self.prefix, tuple(nodes))))

    @property
    def router(self) -> str:
        return f"{self.prefix}-rt"

    def bank(self, member: str) -> Bank:
        return next(b for b in self.banks if b.member == member)

    def host(self, name: str) -> Host:
        """A node (by name) or a bank's host (`<bank>-lb`, `-st`, `-app`)."""
        for bank in self.banks:
            for host in bank.hosts:
                if host.name == name:
                    return host
        raise KeyError(name)

    @property
    def namespaces(self) -> list[str]:
        return [h.ns for b in self.banks for h in b.hosts] + [self.router]


def build(plan: Plan, *, root: Path, owner_pid: int | None) -> None:
    """Make the router and every bank of `plan` (recorded first, so a crash half-way is
    cleaned up like any stale lab). `root`: the lab's directory; `owner_pid`: the process
    whose end makes the lab stale (None: it lasts while `root` names it)."""
    record(plan.prefix, root=root, owner_pid=owner_pid)
    rt = plan.router
    netns.add(rt)
    netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], ns=rt)
    netns.run(["iptables", "-N", CUT], ns=rt)
    for chain in ("INPUT", "OUTPUT", "FORWARD"):
        netns.run(["iptables", "-I", chain, "-j", CUT], ns=rt)
    for bank in plan.banks:
        add_bank(plan, bank)


def add_bank(plan: Plan, bank: Bank) -> None:
    """The bank's bridge on the router and one namespace per host, linked to it."""
    bridge = f"br{bank.index}"
    netns.bridge(plan.router, bridge, f"{bank.gateway}/24")
    for host in bank.hosts:
        netns.add(host.ns)
        netns.veth(host.ns, "eth0", plan.router, host.router_dev)
        netns.address(host.ns, "eth0", f"{host.address}/24")
        netns.attach(plan.router, host.router_dev, bridge)
        netns.run(["ip", "route", "add", "default", "via", bank.gateway], ns=host.ns)


def teardown(prefix: str) -> None:
    """Remove every namespace of the lab (hosts first, the router last), every file
    system mounted under its directory (a fault's small disk), and its record."""
    ours = [ns for ns in netns.names() if ns.startswith(prefix + "-")]
    with ThreadPoolExecutor(max_workers=8) as pool:  # each waits for its processes to end
        list(pool.map(netns.delete, [ns for ns in ours if not ns.endswith("-rt")]))
    for ns in ours:
        netns.delete(ns)  # the router last (and whatever is left)
    record_file = RECORDS / f"{prefix}.json"
    try:
        root = json.loads(record_file.read_text()).get("root")
    except (OSError, ValueError):
        root = None
    if isinstance(root, str):
        unmount_under(Path(root))
    record_file.unlink(missing_ok=True)


def unmount_under(root: Path) -> None:
    """Unmount every file system mounted at or below `root` (deepest first)."""
    inside = str(root.absolute()).rstrip("/") + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if (p + "/").startswith(inside)), reverse=True):
        netns.run(["umount", "-l", point], check=False)


def record(prefix: str, *, root: Path, owner_pid: int | None) -> None:
    RECORDS.mkdir(parents=True, exist_ok=True)
    started = psutil.Process(owner_pid).create_time() if owner_pid else None
    doc = {"owner_pid": owner_pid, "owner_started": started, "root": str(root)}
    (RECORDS / f"{prefix}.json").write_text(json.dumps(doc))


def remove_stale() -> list[str]:
    """Remove the labs whose owner is gone: a test run that died, or a user lab whose
    state dir no longer names it. The prefixes removed."""
    prefixes = {ns.split("-", 1)[0] for ns in netns.names()}
    prefixes |= {p.stem for p in RECORDS.glob("*.json")} if RECORDS.is_dir() else set()
    stale = sorted(p for p in prefixes if PREFIX.match(p) and not _alive(p))
    for prefix in stale:
        teardown(prefix)
    return stale


def _alive(prefix: str) -> bool:
    try:
        doc = json.loads((RECORDS / f"{prefix}.json").read_text())
    except (OSError, ValueError):
        return False
    pid, root = doc.get("owner_pid"), doc.get("root")
    if isinstance(pid, int):  # alive, and not another process that took its pid
        try:
            return bool(psutil.Process(pid).create_time() == doc.get("owner_started"))
        except psutil.NoSuchProcess:
            return False
    if isinstance(root, str):
        lab = Path(root) / "lab.json"
        try:
            return bool(json.loads(lab.read_text()).get("prefix") == prefix)
        except (OSError, ValueError):
            return False
    return False


# -- cuts: iptables rules inside the lab's namespaces ------------------------------------


def cut_banks(plan: Plan, a: str, b: str) -> None:
    """Partition bank `a` from bank `b` at the router: every packet of a connection
    opened from one side to the other is dropped, both ways, proxied or not."""
    for x, y in ((a, b), (b, a)):
        netns.run(["iptables", "-A", CUT, "-m", "conntrack",
                   "--ctorigsrc", plan.bank(x).subnet, "--ctorigdst", plan.bank(y).subnet,
                   "-j", "DROP"], ns=plan.router)  # fmt: skip


def heal_banks(plan: Plan) -> None:
    netns.run(["iptables", "-F", CUT], ns=plan.router)


def _host_chains(host: Host) -> None:
    for chain, hook in ((CUT_IN, "INPUT"), (CUT_OUT, "OUTPUT")):
        if netns.run(["iptables", "-L", chain, "-n"], ns=host.ns, check=False) == "":
            netns.run(["iptables", "-N", chain], ns=host.ns)
            netns.run(["iptables", "-I", hook, "-j", chain], ns=host.ns)


def isolate(host: Host, *, keep: Sequence[str] = ()) -> None:
    """Drop every packet to and from `host` but its own loopback and the addresses in
    `keep` (a node cut from every other node, that still reaches its store)."""
    _host_chains(host)
    for address in keep:
        netns.run(["iptables", "-A", CUT_IN, "-s", address, "-j", "RETURN"], ns=host.ns)
        netns.run(["iptables", "-A", CUT_OUT, "-d", address, "-j", "RETURN"], ns=host.ns)
    netns.run(["iptables", "-A", CUT_IN, "!", "-i", "lo", "-j", "DROP"], ns=host.ns)
    netns.run(["iptables", "-A", CUT_OUT, "!", "-o", "lo", "-j", "DROP"], ns=host.ns)


def cut_host(host: Host, *, peers: Sequence[str]) -> None:
    """Drop `host`'s packets to and from `peers` (addresses or CIDRs) only."""
    _host_chains(host)
    for peer in peers:
        netns.run(["iptables", "-A", CUT_IN, "-s", peer, "-j", "DROP"], ns=host.ns)
        netns.run(["iptables", "-A", CUT_OUT, "-d", peer, "-j", "DROP"], ns=host.ns)


def heal_host(host: Host) -> None:
    for chain in (CUT_IN, CUT_OUT):
        netns.run(["iptables", "-F", chain], ns=host.ns, check=False)
