"""The ARM template of one bank's deployment (`infra/azure/poactl-bank.json`).

`build()` is pure: the committed file is its output (`poactl azure template --check`
and `tests/azure/` compare them), so what the agents expect (ports, container names,
install_agent.sh's options, the geth image) is written once, in the code. One template
serves a founding bank (`joinFrom` empty) and a joining bank (`joinFrom` is the consortium
data URL of any member). Parameter files come from `poactl azure params`.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator import __version__
from orchestrator.azure import compute, monitoring, network, platform
from orchestrator.azure.arm import COMPUTE, IDENTITY, NETWORK, STORAGE, Json, p, ref, v, x
from orchestrator.azure.cloudinit import cloud_config
from orchestrator.config import Ports, RuntimeSettings
from orchestrator.network.served import DATA_PORT

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
TEMPLATE_FILE = "infra/azure/poactl-bank.json"
WHEEL = f"poactl-{__version__}-py3-none-any.whl"
PORTS = Ports()


def _param(kind: str, description: str, default: Any = None, **extra: Any) -> Json:
    out: Json = {"type": kind}
    if default is not None:
        out["defaultValue"] = default
    out.update(extra)
    out["metadata"] = {"description": description}
    return out


def parameters() -> dict[str, Json]:
    cidr = "a CIDR, e.g. 10.1.0.0/16"
    return {
        "member": _param("string", "This bank's member name in the consortium file.",
                         minLength=2, maxLength=32),
        "joinFrom": _param("string", "The consortium data URL of any member to join from "
                           "(its deployment's output consortiumDataUrl); empty to found the "
                           "network.", ""),
        "consortium": _param("string", "The consortium file the agents run with (YAML), "
                             "as `poactl azure params` renders it."),
        "custody": _param("string", "How the vault keeps validator keys: secrets (read "
                          "into the agent's memory) or keys (EC P-256K keys that sign in "
                          "the vault); the consortium file's `custody` for this member.",
                          "secrets", allowedValues=["secrets", "keys"]),
        "validators": _param("int", "This member's validator identities (the consortium "
                             "file's `validators`).", 2, minValue=0, maxValue=64),
        "hsmKeys": _param("bool", "Make the validator keys in the vault's HSM (EC-HSM; "
                          "custody keys and a premium vault).", False),
        "instanceCount": _param("int", "Validator VMs: at least validators + spares.", 2,
                                minValue=1, maxValue=64),
        "vmSize": _param("string", "The VMs' size.", "Standard_B2s"),
        "monitoring": _param("bool", "Log Analytics and the Azure Monitor agent.", False),
        "logRetentionDays": _param("int", "Log Analytics retention.", 30, minValue=30,
                                   maxValue=730),
        "vaultSku": _param("string", "premium for HSM-backed validator keys.", "standard",
                           allowedValues=["standard", "premium"]),
        "vaultName": _param("string", "The bank's Key Vault (globally unique).",
                            minLength=3, maxLength=24),
        "storageAccountName": _param("string", "The bank's storage account (globally "
                                     "unique, 3-24 lowercase letters and digits).",
                                     minLength=3, maxLength=24),
        "addressSpace": _param("string", f"The bank's VNet: {cidr}; no two members overlap."),
        "subnetPrefix": _param("string", "The nodes' subnet, inside addressSpace."),
        "frontendIp": _param("string", "The internal load balancer's address in the subnet."),
        "peering": _param("string", "How the banks' nodes reach each other: private (VNet "
                          "peering, VPN or ExpressRoute) or public (the public load "
                          "balancer's NAT ports).", "private",
                          allowedValues=["private", "public"]),
        "peerSources": _param("array", "The other members' node networks (private) or "
                              "egress addresses (public): the only sources of devp2p and "
                              "consortium data.", []),
        "peerNetwork": _param("string", "geth's --netrestrict: one CIDR covering every "
                              "member's node network (0.0.0.0/0 with public peering)."),
        "applicationSources": _param("array", "The bank's application networks: the only "
                                     "sources of JSON-RPC and the monitor.", minLength=1),
        "operatorSources": _param("array", "Public addresses that may reach the storage "
                                  "account and the vault besides the subnet (the operator "
                                  "uploading artifacts).", []),
        "sshSources": _param("array", "Who may SSH in; empty: nobody.", []),
        "adminUsername": _param("string", "The VMs' admin user (SSH key only).", "poactladmin"),
        "sshPublicKey": _param("string", "The admin user's SSH public key."),
        "poactlWheel": _param("string", "The poactl wheel in the artifacts container.", WHEEL),
        "wheelhouse": _param("string", "A tar of every dependency's wheel in the artifacts "
                             "container, for VMs without PyPI; empty: PyPI.", ""),
        "runtime": _param("string", "How geth runs: docker (the image) or process (a geth "
                          "binary on the VM).", "docker", allowedValues=["docker", "process"]),
        "gethImage": _param("string", "The geth 1.13.15 image (docker runtime).",
                            RuntimeSettings().image),
        "p2pPort": _param("int", "geth's devp2p port.", PORTS.p2p),
        "rpcPort": _param("int", "geth's JSON-RPC port, and the load balancer's.", PORTS.http),
        "healthPort": _param("int", "The agent's /health and /metrics.", PORTS.health),
        "dataPort": _param("int", "The bank's consortium data endpoint.", DATA_PORT),
        "monitorPort": _param("int", "The bank's monitor.", PORTS.monitor),
        "peeringPort": _param("int", "First public NAT port for devp2p (public peering).",
                              PORTS.peering),
        "encryptionAtHost": _param("bool", "Encrypt the VMs' disks and caches at the host "
                                   "(register the subscription's EncryptionAtHost feature).",
                                   True),
        "location": _param("string", "Where to deploy.", x("resourceGroup().location")),
    }  # fmt: skip


def variables() -> Json:
    member = p("member")

    def named(pattern: str) -> str:
        return x(f"format('{pattern}', {member})")

    return {
        "identityName": named("id-poactl-{0}"),
        "nsgName": named("nsg-poactl-{0}"),
        "vnetName": named("vnet-poactl-{0}"),
        "natName": named("ng-poactl-{0}"),
        "egressIpName": named("pip-poactl-{0}-egress"),
        "ilbName": named("lbi-poactl-{0}"),
        "elbName": named("lbe-poactl-{0}"),
        "p2pIpName": named("pip-poactl-{0}-p2p"),
        "vmssName": named("vmss-poactl-{0}"),
        "workspaceName": named("log-poactl-{0}"),
        "collectionRuleName": named("dcr-poactl-{0}"),
        "isPublic": x(f"equals({p('peering')}, 'public')"),
        "peerSources": x(
            f"if(empty({p('peerSources')}), createArray({p('subnetPrefix')}), {p('peerSources')})"
        ),
        **platform.container_variables(),
        "cloudConfig": cloud_config(),
    }


def outputs() -> Json:
    publish = platform.CONTAINERS["publish"]
    public_ip = f"{ref(network.PIP, v('p2pIpName'), NETWORK)}.ipAddress"
    data_host = f"if({v('isPublic')}, {public_ip}, {p('frontendIp')})"
    storage = ref(platform.STORAGE_ACCOUNT, p("storageAccountName"), STORAGE)
    identity = ref(platform.UAI, v("identityName"), IDENTITY)
    egress = f"{ref(network.PIP, v('egressIpName'), NETWORK)}.ipAddress"

    def out(value: str, description: str) -> Json:
        return {"type": "string", "value": x(value), "metadata": {"description": description}}

    return {
        "consortiumDataUrl": out(
            f"format('http://{{0}}:{{1}}/{publish}', {data_host}, {p('dataPort')})",
            "Where the other banks read this bank's consortium data; a joining bank "
            "deploys with it as joinFrom."),
        "rpcEndpoint": out(f"format('http://{{0}}:{{1}}', {p('frontendIp')}, {p('rpcPort')})",
                           "The bank's JSON-RPC endpoint, for its applications."),
        "monitorUrl": out(f"format('http://{{0}}:{{1}}/', {p('frontendIp')}, {p('monitorPort')})",
                          "The bank's monitor page."),
        "egressAddress": out(egress, "Where the bank's nodes connect from (public peering: "
                             "what the other banks put in their peerSources)."),
        "artifactsUrl": out(f"format('{{0}}artifacts', {storage}.primaryEndpoints.blob)",
                            "Upload install_agent.sh and the poactl wheel here."),
        "identityClientId": out(f"{identity}.clientId", "The VMs' managed identity."),
        "identityPrincipalId": out(f"{identity}.principalId", "Its principal (object) id."),
    }  # fmt: skip


def build() -> Json:
    """The whole template."""
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "One bank of a poactl consortium (Clique on geth 1.13.15): found "
            "a network or join one. Generated by orchestrator/azure/template.py.",
            "poactl": __version__,
        },
        "parameters": parameters(),
        "variables": variables(),
        "resources": [
            *network.resources(),
            *platform.resources(),
            compute.scale_set([compute.health_extension()]),
            *monitoring.resources(compute.VMSS, COMPUTE),
        ],
        "outputs": outputs(),
    }


def render(template: Json | None = None) -> str:
    """The template file's text: two-space JSON, keys in the order written, a newline."""
    return json.dumps(build() if template is None else template, indent=2) + "\n"
