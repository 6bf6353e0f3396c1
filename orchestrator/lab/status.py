"""What `poactl lab status` shows: each host with its namespace and address, what runs
on it (a node's agent state, signer and head; a bank's balancer, monitor and store), the
toxics on the links between banks and the cuts in force."""

from __future__ import annotations

from orchestrator.agent import status
from orchestrator.agent.status import AgentStatus
from orchestrator.errors import LabError
from orchestrator.geth.ipc import ipc_probe
from orchestrator.lab import netns
from orchestrator.lab.consortium import STORE_PORT, LabConsortium
from orchestrator.lab.lab import Lab
from orchestrator.lab.topology import CUT, CUT_IN, Host


def lab_status(lab: Lab, *, nodes: bool = True) -> str:
    up = lab.network_up
    lines = [f"lab {lab.plan.prefix} in {lab.dir.root}: network {'up' if up else 'down'}"]
    if nodes:
        rows = [("HOST", "ADDRESS", "NAMESPACE", "WHAT")]
        for bank in lab.plan.banks:
            c = lab.consortium(bank.member)
            spec = c.load() if c.exists else None
            for host in bank.hosts:
                rows.append((host.name, host.address, host.ns, _what(lab, c, host, spec is None)))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines += ["  " + "  ".join(f"{v:<{w}}" for v, w in zip(r, widths, strict=False)) + r[3]
                  for r in rows]  # fmt: skip
    if up:
        lines.append("links between banks: " + _links(lab))
        lines.append("cuts: " + (", ".join(_cuts(lab)) or "none"))
    return "\n".join(lines)


def _what(lab: Lab, c: LabConsortium, host: Host, missing: bool) -> str:
    if missing:
        return "-"
    member = host.member
    if host.name == f"{member}-lb":
        return f"balancer {c.balancer_url(member)}  monitor http://{host.address}:" \
               f"{c.load().monitor_port(member)}/"  # fmt: skip
    if host.name == f"{member}-st":
        return f"store (Azurite) http://{host.address}:{STORE_PORT}"
    if host.name == f"{member}-app":
        return "the bank's applications (`poactl lab exec` runs here)"
    paths = c.layout.node(host.name)
    record = status.read(paths.agent_status, AgentStatus)
    head = ipc_probe(paths.ipc, "eth_blockNumber", [], timeout=1.0)
    state = record.state if record else "no agent"
    signer = f" {record.identity.signer}" if record and record.identity else ""
    block = f" block {int(head, 16)}" if isinstance(head, str) else ""
    return f"{state}{signer}{block}"


def _links(lab: Lab) -> str:
    try:
        toxics = lab.wan.toxics()
    except LabError:
        return "toxiproxy does not answer"
    kinds = sorted({
        f"{t['type']} {t['attributes']}" for ts in toxics.values() for t in ts
        if t.get("stream") == "downstream"
    })  # fmt: skip
    return f"{len(toxics)} proxied endpoints; " + ("; ".join(kinds) or "no toxics")


def _cuts(lab: Lab) -> list[str]:
    found = []
    rules = netns.run(["iptables", "-S", CUT], ns=lab.plan.router, check=False)
    subnets = {b.subnet: b.member for b in lab.plan.banks}
    for rule in rules.splitlines():
        words = rule.split()
        if "--ctorigsrc" in words:
            a = subnets.get(words[words.index("--ctorigsrc") + 1], "?")
            b = subnets.get(words[words.index("--ctorigdst") + 1], "?")
            if a < b:
                found.append(f"{a} | {b}")
    for bank in lab.plan.banks:
        for host in bank.hosts:
            rules = netns.run(["iptables", "-S", CUT_IN], ns=host.ns, check=False)
            if "-j DROP" in rules:
                found.append(f"{host.name} cut off")
    return found
