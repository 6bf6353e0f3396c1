"""The bank's network: VNet and subnet, the network security group, egress through a NAT
gateway, the internal load balancer (JSON-RPC, consortium data, monitor) and, with public
peering, the public load balancer (one NAT port per node for devp2p, and the data
endpoint).

What comes in (the NSG, evaluated in priority order; the last rule denies the rest, so
Azure's default "allow from VirtualNetwork", which includes peered networks, never
applies):

    100  devp2p        from the other members (peerSources) and the bank's own subnet
    110  data          the bank's consortium data endpoint, from the other members
    120  applications  JSON-RPC and the monitor, from the bank's application networks
    130  probes        the load balancer's probes (health, data, monitor)
    140  ssh           denied, unless sshSources names who may come in
    4096 deny          everything else

With private peering (VNet peering, VPN or ExpressRoute between the banks) other banks
dial each node's private address and read the data endpoint on the internal load
balancer; with public peering they dial the public load balancer, whose inbound NAT rule
(V2: a port range over the backend pool) gives each node its own port, which each VM
reads from IMDS at boot (`boot.py`) and advertises in its enode.
"""

from __future__ import annotations

from orchestrator.azure.arm import NETWORK, Json, p, ref, resource, rid, sub_id, v, x

NSG = "Microsoft.Network/networkSecurityGroups"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NAT = "Microsoft.Network/natGateways"
PIP = "Microsoft.Network/publicIPAddresses"
LB = "Microsoft.Network/loadBalancers"
SUBNET_NAME = "nodes"
POOL = "nodes"
PEERING_PORT_RANGE = 1000  # frontend ports of the p2p NAT rule: one per node, at most this many


def subnet_id() -> str:
    return rid(SUBNET, v("vnetName"), f"'{SUBNET_NAME}'")


def _rule(
    name: str,
    priority: int,
    *,
    sources: str,
    ports: str,
    access: str = "'Allow'",
    description: str,
) -> Json:
    return {
        "name": name,
        "properties": {
            "description": description,
            "priority": priority,
            "direction": "Inbound",
            "access": x(access) if access.startswith("if(") else access.strip("'"),
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "sourceAddressPrefixes": x(sources),
            "destinationAddressPrefix": x(p("subnetPrefix")),
            "destinationPortRanges": x(ports),
        },
    }


def _ports(*names: str) -> str:
    return "createArray(" + ", ".join(f"string({p(n)})" for n in names) + ")"


def security_group() -> Json:
    no_ssh = f"empty({p('sshSources')})"
    # With public peering the bank's own nodes dial each other through the public load
    # balancer too, so they arrive from the bank's own egress address.
    egress_ip = f"{ref(PIP, v('egressIpName'), NETWORK)}.ipAddress"
    own_egress = f"if({v('isPublic')}, createArray(format('{{0}}/32', {egress_ip})), createArray())"
    p2p_sources = f"concat({p('peerSources')}, createArray({p('subnetPrefix')}), {own_egress})"
    rules = [
        _rule("devp2p", 100, sources=p2p_sources, ports=_ports("p2pPort"),
              description="devp2p from the other members' nodes and the bank's own"),
        _rule("consortium-data", 110, sources=v("peerSources"), ports=_ports("dataPort"),
              description="the bank's published consortium data, for the other members"),
        _rule("applications", 120, sources=p("applicationSources"),
              ports=_ports("rpcPort", "monitorPort"),
              description="JSON-RPC and the monitor, from the bank's application networks"),
        {
            "name": "load-balancer-probes",
            "properties": {
                "description": "the load balancers' health probes",
                "priority": 130,
                "direction": "Inbound",
                "access": "Allow",
                "protocol": "Tcp",
                "sourcePortRange": "*",
                "sourceAddressPrefix": "AzureLoadBalancer",
                "destinationAddressPrefix": x(p("subnetPrefix")),
                "destinationPortRanges": x(_ports("healthPort", "dataPort", "monitorPort")),
            },
        },
        _rule("ssh", 140, access=f"if({no_ssh}, 'Deny', 'Allow')",
              sources=f"if({no_ssh}, createArray('0.0.0.0/0'), {p('sshSources')})",
              ports="createArray('22')",
              description="SSH: denied unless sshSources names who may come in"),
        {
            "name": "deny-everything-else",
            "properties": {
                "description": "nothing else comes in (not even from peered networks)",
                "priority": 4096,
                "direction": "Inbound",
                "access": "Deny",
                "protocol": "*",
                "sourcePortRange": "*",
                "sourceAddressPrefix": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "*",
            },
        },
    ]  # fmt: skip
    return resource(NSG, NETWORK, x(v("nsgName")), {"securityRules": rules},
                    depends_on=[x(rid(PIP, v("egressIpName")))])  # fmt: skip


def _public_ip(name: str, *, condition: str | None = None) -> Json:
    return resource(
        PIP, NETWORK, x(v(name)),
        {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
         "idleTimeoutInMinutes": 4},
        condition=condition, sku={"name": "Standard", "tier": "Regional"},
    )  # fmt: skip


def egress() -> list[Json]:
    """The NAT gateway every node's outbound traffic leaves through (one address: what
    the other banks allow in with public peering)."""
    gateway = resource(
        NAT, NETWORK, x(v("natName")),
        {"idleTimeoutInMinutes": 4, "publicIpAddresses": [sub_id(PIP, v("egressIpName"))]},
        sku={"name": "Standard"}, depends_on=[x(rid(PIP, v("egressIpName")))],
    )  # fmt: skip
    return [_public_ip("egressIpName"), gateway]


def virtual_network() -> Json:
    subnet = {
        "name": SUBNET_NAME,
        "properties": {
            "addressPrefix": x(p("subnetPrefix")),
            "networkSecurityGroup": sub_id(NSG, v("nsgName")),
            "natGateway": sub_id(NAT, v("natName")),
            "defaultOutboundAccess": False,
            # the storage account and the vault admit this subnet only
            "serviceEndpoints": [
                {"service": "Microsoft.Storage"},
                {"service": "Microsoft.KeyVault"},
            ],
        },
    }
    return resource(
        VNET, NETWORK, x(v("vnetName")),
        {"addressSpace": {"addressPrefixes": [x(p("addressSpace"))]}, "subnets": [subnet]},
        depends_on=[x(rid(NSG, v("nsgName"))), x(rid(NAT, v("natName")))],
    )  # fmt: skip


def _lb_id(kind: str, lb: str, name: str) -> Json:
    return sub_id(f"{LB}/{kind}", v(lb), f"'{name}'")


def _probe(name: str, port: str, *, http: bool = False) -> Json:
    props: Json = {"protocol": "Http" if http else "Tcp", "port": x(p(port)),
                   "intervalInSeconds": 5, "probeThreshold": 2}  # fmt: skip
    if http:
        props["requestPath"] = "/health"
    return {"name": name, "properties": props}


def _lb_rule(lb: str, name: str, port: str, backend: str, probe: str, **extra: object) -> Json:
    return {
        "name": name,
        "properties": {
            "frontendIPConfiguration": _lb_id("frontendIPConfigurations", lb, "frontend"),
            "backendAddressPool": _lb_id("backendAddressPools", lb, POOL),
            "probe": _lb_id("probes", lb, probe),
            "protocol": "Tcp",
            "frontendPort": x(p(port)),
            "backendPort": x(p(backend)),
            "idleTimeoutInMinutes": 4,
            "enableFloatingIP": False,
            **extra,
        },
    }


def internal_load_balancer() -> Json:
    """The bank's private endpoints: JSON-RPC (nodes in rotation while /health says 200),
    the consortium data endpoint and the monitor (one client stays on one monitor)."""
    frontend = {
        "name": "frontend",
        "properties": {
            "subnet": {"id": x(subnet_id())},
            "privateIPAllocationMethod": "Static",
            "privateIPAddress": x(p("frontendIp")),
            "privateIPAddressVersion": "IPv4",
        },
    }
    return resource(
        LB, NETWORK, x(v("ilbName")),
        {
            "frontendIPConfigurations": [frontend],
            "backendAddressPools": [{"name": POOL}],
            "probes": [_probe("health", "healthPort", http=True), _probe("data", "dataPort"),
                       _probe("monitor", "monitorPort")],
            "loadBalancingRules": [
                _lb_rule("ilbName", "json-rpc", "rpcPort", "rpcPort", "health",
                         loadDistribution="Default"),
                _lb_rule("ilbName", "consortium-data", "dataPort", "dataPort", "data",
                         loadDistribution="Default"),
                _lb_rule("ilbName", "monitor", "monitorPort", "monitorPort", "monitor",
                         loadDistribution="SourceIP"),
            ],
        },
        sku={"name": "Standard", "tier": "Regional"},
        depends_on=[x(rid(VNET, v("vnetName")))],
    )  # fmt: skip


def public_load_balancer() -> list[Json]:
    """Public peering only: each node's devp2p port behind its own frontend port, and
    the consortium data endpoint."""
    public = v("isPublic")
    frontend = {"name": "frontend",
                "properties": {"publicIPAddress": sub_id(PIP, v("p2pIpName"))}}  # fmt: skip
    nat = {
        "name": "devp2p",
        "properties": {
            "frontendIPConfiguration": _lb_id("frontendIPConfigurations", "elbName", "frontend"),
            "backendAddressPool": _lb_id("backendAddressPools", "elbName", POOL),
            "protocol": "Tcp",
            "frontendPortRangeStart": x(p("peeringPort")),
            "frontendPortRangeEnd": x(f"add({p('peeringPort')}, {PEERING_PORT_RANGE - 1})"),
            "backendPort": x(p("p2pPort")),
            "idleTimeoutInMinutes": 30,
            "enableFloatingIP": False,
            "enableTcpReset": True,
        },
    }
    balancer = resource(
        LB, NETWORK, x(v("elbName")),
        {
            "frontendIPConfigurations": [frontend],
            "backendAddressPools": [{"name": POOL}],
            "probes": [_probe("data", "dataPort")],
            "loadBalancingRules": [
                _lb_rule("elbName", "consortium-data", "dataPort", "dataPort", "data",
                         loadDistribution="Default", disableOutboundSnat=True),
            ],
            "inboundNatRules": [nat],
        },
        condition=public, sku={"name": "Standard", "tier": "Regional"},
        depends_on=[x(rid(PIP, v("p2pIpName")))],
    )  # fmt: skip
    return [_public_ip("p2pIpName", condition=public), balancer]


def backend_pools() -> str:
    """The scale set's NICs join the internal pool, and the public one with public peering."""
    internal = f"createObject('id', {rid(f'{LB}/backendAddressPools', v('ilbName'), repr(POOL))})"
    external = f"createObject('id', {rid(f'{LB}/backendAddressPools', v('elbName'), repr(POOL))})"
    return x(f"if({v('isPublic')}, createArray({internal}, {external}), createArray({internal}))")


def resources() -> list[Json]:
    return [
        *egress(),
        security_group(),
        virtual_network(),
        internal_load_balancer(),
        *public_load_balancer(),
    ]
