"""A bank's deployment parameters, rendered from the consortium file and its choices.

`render(consortium, Choices(...))` is pure: it checks that the deployment can work and
returns the ARM parameter file (`poactl azure params` writes it). What it refuses, each
with the fix:

- a member the consortium file does not list;
- a profile (or `--instances`) with fewer VMs than the member's validators + spares, and
  members with `rpc_nodes` (the scale set runs validator agents only);
- a second founder: in Azure the first member of the file founds the network and every
  other bank joins it (with public peering it must say from where: `--join URL`);
- a joining bank with more validators than the genesis lets one member have;
- members whose address spaces overlap (peered networks cannot route between them);
- a custody mode the vault cannot hold: HSM-backed validator keys need `custody: keys`
  and a premium vault.

The consortium file the VMs get names only this bank (with the network's chain
settings): a founder's genesis holds its own validators; every other bank joins through
governance, as `poactl join` does on one machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from orchestrator import __version__
from orchestrator.azure.profiles import PROFILES, instances_for
from orchestrator.azure.template import WHEEL, parameters
from orchestrator.config import AzureMember, AzureSettings, Consortium
from orchestrator.errors import ConfigError
from orchestrator.network.served import DATA_PORT

PARAMETERS_SCHEMA = (
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
)
SUBNET_PREFIX = 24  # the nodes' subnet: the first /24 of the bank's address space
HINT = "see docs/azure.md (the consortium file's `azure:` section)"
AT_DEPLOY_TIME = ("sshPublicKey",)
PRIVATE = [
    ipaddress.IPv4Network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
    )
]
DATA_URL = re.compile(
    r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?(\?\S*)?"
)  # given on the command line, never in a committed file


@dataclass(frozen=True)
class Choices:
    """What a bank decides for its deployment (the rest comes from the consortium file)."""

    member: str
    profile: str = "small"
    join: str | None = None
    instances: int | None = None
    vault_sku: Literal["standard", "premium"] | None = None
    hsm: bool = False
    runtime: Literal["docker", "process"] = "docker"
    image: str | None = None
    app_networks: tuple[str, ...] = ()
    operator_addresses: tuple[str, ...] = ()
    ssh_sources: tuple[str, ...] = ()
    wheelhouse: str = ""
    name_suffix: str | None = None
    ssh_public_key: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A parameter file and what it says, for the command's summary."""

    parameters: dict[str, Any]
    founds: bool
    instances: int
    notes: list[str] = field(default_factory=list)

    def file_text(self) -> str:
        body = {
            "$schema": PARAMETERS_SCHEMA,
            "contentVersion": "1.0.0.0",
            "parameters": {k: {"value": v} for k, v in self.parameters.items()},
        }
        return json.dumps(body, indent=2) + "\n"


# -- networks --------------------------------------------------------------------------


def address_spaces(consortium: Consortium) -> dict[str, ipaddress.IPv4Network]:
    """Each member's VNet: given in the file, else 10.<n>.0.0/16 (n = 1 + its index)."""
    azure = consortium.settings.azure or AzureSettings()
    spaces = {}
    for i, member in enumerate(consortium.members()):
        given = azure.members.get(member, AzureMember()).address_space
        text = given or f"10.{i + 1}.0.0/16"
        try:
            net = ipaddress.ip_network(text)
        except ValueError as e:
            raise ConfigError(
                f"{text!r} is not a network ({e})", obj=f"azure.members.{member}.address_space",
                hint="give a private IPv4 CIDR, e.g. 10.1.0.0/16",
            ) from e  # fmt: skip
        if not isinstance(net, ipaddress.IPv4Network) or not net.is_private or net.prefixlen > 28:
            raise ConfigError(
                f"{text} is not a private IPv4 network of at least 16 addresses",
                obj=f"azure.members.{member}.address_space",
                hint="give a private IPv4 CIDR of /28 or larger, e.g. 10.1.0.0/16",
            )
        spaces[member] = net
    names = list(spaces)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if spaces[a].overlaps(spaces[b]):
                raise ConfigError(
                    f"the address spaces of {a} ({spaces[a]}) and {b} ({spaces[b]}) overlap: "
                    "peered networks cannot route between them",
                    obj="azure.members",
                    hint=f"give each member its own address space; {HINT}",
                )
    return spaces


def _subnet(space: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if space.prefixlen >= SUBNET_PREFIX:
        return space
    return next(space.subnets(new_prefix=SUBNET_PREFIX))


def frontend_ip(space: ipaddress.IPv4Network) -> str:
    """The internal load balancer's static address: the subnet's last usable one (Azure
    hands VMs the lowest free addresses)."""
    return str(_subnet(space).broadcast_address - 1)


def data_url(space: ipaddress.IPv4Network) -> str:
    """A bank's consortium data URL with private peering (its deployment's output)."""
    return f"http://{frontend_ip(space)}:{DATA_PORT}/consortium"


def _covering(nets: list[ipaddress.IPv4Network]) -> str:
    """The smallest CIDR that holds every one of `nets` (geth's --netrestrict)."""
    net = nets[0]
    while not all(n.subnet_of(net) for n in nets):
        net = net.supernet()
    return str(net)


def _is_private(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Not reachable from the internet (documentation ranges count as public here)."""
    if isinstance(net, ipaddress.IPv6Network):
        return net.is_private
    return any(net.subnet_of(r) for r in PRIVATE)


def _cidrs(values: tuple[str, ...], what: str, *, public: bool = False) -> list[str]:
    out = []
    for value in values:
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError as e:
            raise ConfigError(f"{value!r} is not an address or CIDR", obj=what,
                              hint="e.g. 10.20.0.0/16 or 203.0.113.7") from e  # fmt: skip
        if public and _is_private(net):
            raise ConfigError(
                f"{value} is a private address: the storage and vault firewalls take "
                "public addresses only (the subnet is let in already)",
                obj=what, hint="give your workstation's public address",
            )  # fmt: skip
        out.append(str(net))
    return out


# -- names -----------------------------------------------------------------------------


def resource_names(consortium: Consortium, member: str, suffix: str | None) -> tuple[str, str]:
    """(vault, storage account): globally unique names, stable for a chain and member."""
    if suffix is None:
        seed = f"{consortium.settings.chain_id}:{member}".encode()
        suffix = hashlib.sha256(seed).hexdigest()[:6]
    if not re.fullmatch(r"[a-z0-9]{1,8}", suffix):
        raise ConfigError(f"{suffix!r} is not a name suffix", obj="--name-suffix",
                          hint="1-8 lowercase letters and digits")  # fmt: skip
    compact = re.sub(r"[^a-z0-9]", "", member)
    storage = f"poa{compact[: 24 - 3 - len(suffix)]}{suffix}"
    vault = f"poa-{member[: 24 - 5 - len(suffix)].rstrip('-')}-{suffix}"
    return vault, storage


# -- the parameter file ----------------------------------------------------------------


VM_SECTIONS = ("ports", "runtime", "balancer", "azure")  # one machine's, or agent.yaml's


def _member_file(consortium: Consortium, member: str) -> str:
    """The consortium file the bank's VMs run with: the network's settings and this bank
    (ports, runtime and balancer are one machine's; on a VM agent.yaml says them)."""
    settings = consortium.settings
    mine = settings.model_copy(update={"members": {member: settings.members[member]}})
    doc = mine.model_dump(mode="json", exclude_none=True, exclude=set(VM_SECTIONS))
    body = yaml.safe_dump(doc, sort_keys=False)
    return f"# {member}'s consortium file, rendered by poactl {__version__} azure params\n{body}"


def _check_member(consortium: Consortium, choices: Choices) -> tuple[bool, int]:
    member = choices.member
    members = consortium.members()
    if member not in members:
        raise ConfigError(
            f"{member!r} is not a member of {consortium.source}",
            obj="--member", hint="members: " + ", ".join(members),
        )  # fmt: skip
    spec = consortium.settings.members[member]
    if spec.rpc_nodes:
        raise ConfigError(
            f"{member} has rpc_nodes: {spec.rpc_nodes}; the Azure deployment runs one scale "
            "set of validator agents",
            obj=f"members.{member}.rpc_nodes",
            hint="set rpc_nodes: 0 (the bank's JSON-RPC goes to its validator VMs)",
        )
    needed = spec.validators + spec.spares
    profile = PROFILES.get(choices.profile)
    if profile is None:
        raise ConfigError(f"no profile {choices.profile!r}", obj="--profile",
                          hint="small, medium or large")  # fmt: skip
    count = choices.instances or instances_for(profile, needed)
    if count < needed:
        given = "--instances" if choices.instances else f"the {profile.name} profile"
        raise ConfigError(
            f"{given} gives {count} VMs; {member} needs {needed} "
            f"(validators {spec.validators} + spares {spec.spares})",
            obj=f"members.{member}",
            hint="pick a larger profile or --instances, or lower validators/spares",
        )
    founds = member == members[0]
    if not founds:
        founder = consortium.settings.members[members[0]]
        cap = consortium.settings.governance.validator_cap or founder.validators
        if spec.validators > cap:
            raise ConfigError(
                f"{member} would run {spec.validators} validators; the network lets a member "
                f"have {cap} (governance.validator_cap, or the founder's count)",
                obj=f"members.{member}.validators",
                hint="lower its validators, or raise governance.validator_cap before founding",
            )
    return founds, count


def _vault_sku(custody: str, choices: Choices) -> str:
    if choices.hsm and custody != "keys":
        raise ConfigError(
            f"HSM-backed validator keys need custody: keys; {choices.member} keeps them as "
            "Key Vault secrets, which no HSM protects",
            obj=f"members.{choices.member}.custody",
            hint="set custody: keys for this member, or leave out --hsm",
        )
    if choices.hsm and choices.vault_sku == "standard":
        raise ConfigError(
            "HSM-backed keys (EC-HSM) need a premium vault; a standard vault holds "
            "software-protected keys only",
            obj="--vault-sku", hint="use --vault-sku premium, or leave out --hsm",
        )  # fmt: skip
    return choices.vault_sku or ("premium" if choices.hsm else "standard")


def render(consortium: Consortium, choices: Choices) -> Rendered:
    """The parameter file of `choices.member`'s deployment, checked."""
    founds, count = _check_member(consortium, choices)
    member, settings = choices.member, consortium.settings
    spec = settings.members[member]
    azure = settings.azure or AzureSettings()
    spaces = address_spaces(consortium)
    space = spaces[member]
    public = azure.peering == "public"
    notes = []
    join = choices.join
    if founds and join:
        raise ConfigError(
            f"{member} is the first member of the consortium file: it founds the network",
            obj="--join", hint="leave out --join for the founder",
        )  # fmt: skip
    if not founds and not join:
        if public:
            raise ConfigError(
                f"{member} joins the network; with public peering the founder's consortium "
                "data URL is its deployment's output",
                obj="--join", hint="pass --join URL (the founder's output consortiumDataUrl)",
            )  # fmt: skip
        join = data_url(spaces[consortium.members()[0]])
        notes.append(f"joins from the founder's data endpoint {join}")
    if join and not DATA_URL.fullmatch(join):
        raise ConfigError(
            f"{join!r} is not an http(s) URL", obj="--join",
            hint="the founder's (or any member's) output consortiumDataUrl",
        )  # fmt: skip
    others = [m for m in consortium.members() if m != member]
    if public:
        peers = [
            address
            for m in others
            for address in _cidrs(
                tuple(azure.members.get(m, AzureMember()).egress), f"azure.members.{m}.egress"
            )
        ]
        if others and not peers:
            notes.append("no other member's egress address is known yet: add them to "
                         "azure.members.<bank>.egress and redeploy")  # fmt: skip
        peer_network = "0.0.0.0/0"
    else:
        peers = [str(spaces[m]) for m in others]
        peer_network = _covering(list(spaces.values()))
    vault, storage = resource_names(consortium, member, choices.name_suffix)
    profile = PROFILES[choices.profile]
    ports = settings.ports
    values: dict[str, Any] = {
        "member": member,
        "joinFrom": join or "",
        "consortium": _member_file(consortium, member),
        "custody": spec.custody,
        "validators": spec.validators,
        "hsmKeys": choices.hsm,
        "instanceCount": count,
        "vmSize": profile.vm_size,
        "monitoring": profile.monitoring,
        "logRetentionDays": profile.log_retention_days,
        "vaultSku": _vault_sku(spec.custody, choices),
        "vaultName": vault,
        "storageAccountName": storage,
        "addressSpace": str(space),
        "subnetPrefix": str(_subnet(space)),
        "frontendIp": frontend_ip(space),
        "peering": azure.peering,
        "peerSources": peers,
        "peerNetwork": peer_network,
        "applicationSources": _cidrs(choices.app_networks, "--app-network") or [str(space)],
        "operatorSources": _cidrs(choices.operator_addresses, "--operator-ip", public=True),
        "sshSources": _cidrs(choices.ssh_sources, "--ssh-from"),
        "poactlWheel": WHEEL,
        "wheelhouse": choices.wheelhouse,
        "runtime": choices.runtime,
        "gethImage": choices.image or settings.runtime.image,
        "p2pPort": ports.p2p,
        "rpcPort": ports.http,
        "healthPort": ports.health,
        "dataPort": DATA_PORT,
        "monitorPort": ports.monitor,
        "peeringPort": ports.peering,
    }
    if choices.ssh_public_key:
        values["sshPublicKey"] = choices.ssh_public_key
    unknown = set(values) - set(parameters())
    assert not unknown, f"not template parameters: {unknown}"
    return Rendered(values, founds=founds, instances=count, notes=notes)
