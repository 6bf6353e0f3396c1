"""What matters for security and for the agents, read from the deployment as Azure would
evaluate it: role assignments and their scopes, the NSG rules, the load balancers, the
health extension, and that the boot passes exactly options install_agent.sh accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.azure import boot, roles
from orchestrator.azure.platform import CONTAINERS
from orchestrator.config import Ports
from orchestrator.network.names import validator_key_name
from tests.azure.arm_eval import Deployment
from tests.azure.conftest import PARAMETER_FILES, REPO

FOUNDER = next(p for p in PARAMETER_FILES if p.name == "bank-a.small.json")
JOINER = next(p for p in PARAMETER_FILES if p.name == "bank-b.small.json")
INSTALLER = REPO / "scripts" / "install_agent.sh"
OWNER_LIKE = {  # roles that would give the VMs control over resources, not just data
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",  # Key Vault Administrator
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
}


def deployed(deployment: Deployment, resource_type: str) -> list[dict[str, Any]]:
    """The resources of a type that this deployment creates, evaluated."""
    out = []
    for resource in deployment.resources(resource_type):
        if "condition" in resource and not deployment.value(resource["condition"]):
            continue
        out.append(deployment.value(resource))
    return out


# -- identities and roles --------------------------------------------------------------


@pytest.mark.parametrize("custody", ["secrets", "keys"])
def test_the_identity_gets_least_privilege_on_the_banks_own_resources(
    deploy: Callable[..., Deployment], custody: str
) -> None:
    deployment = deploy(FOUNDER, custody=custody)
    values = deployment.params
    storage, vault = values["storageAccountName"], values["vaultName"]
    scopes = {
        "vault": f"Microsoft.KeyVault/vaults/{vault}",
        **{
            key: f"Microsoft.Storage/storageAccounts/{storage}/blobServices/default/containers/{c}"
            for key, c in CONTAINERS.items()
        },
    }
    found = set()
    for assignment in deployed(deployment, "Microsoft.Authorization/roleAssignments"):
        props = assignment["properties"]
        role = props["roleDefinitionId"].rsplit("/", 1)[1]
        assert role not in OWNER_LIKE
        assert props["principalType"] == "ServicePrincipal"
        assert props["principalId"] == "0a1b2c3d-0000-4000-8000-000000000001"  # the UAI's
        assert assignment["scope"] in scopes.values(), assignment["scope"]  # never the group
        scope = next(k for k, v in scopes.items() if v == assignment["scope"])
        found.add((role, scope))
    assert found == {(g.role, g.scope) for g in roles.grants_for(custody)}
    roles_on_vault = {r for r, s in found if s == "vault"}
    assert (roles.KEY_VAULT_CRYPTO_OFFICER in roles_on_vault) == (custody == "keys")
    assert (roles.STORAGE_BLOB_DATA_READER, "artifacts") in found


def test_the_scale_set_runs_as_the_one_user_assigned_identity(
    deploy: Callable[..., Deployment],
) -> None:
    (vmss,) = deployed(deploy(FOUNDER), "Microsoft.Compute/virtualMachineScaleSets")
    assert vmss["identity"]["type"] == "UserAssigned"
    assert list(vmss["identity"]["userAssignedIdentities"]) == [
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-poactl-bank-a"
    ]


def test_storage_and_vault_take_tokens_only_from_the_banks_subnet(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(FOUNDER, operatorSources=["198.51.100.7/32"])
    (storage,) = deployed(deployment, "Microsoft.Storage/storageAccounts")
    props = storage["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["networkAcls"]["defaultAction"] == "Deny"
    for container in deployed(
        deployment, "Microsoft.Storage/storageAccounts/blobServices/containers"
    ):
        assert container["properties"]["publicAccess"] == "None"
    (vault,) = deployed(deployment, "Microsoft.KeyVault/vaults")
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True and props["enablePurgeProtection"] is True
    assert props["networkAcls"]["defaultAction"] == "Deny"


def test_hsm_keys_are_the_validator_keys_the_agents_look_for(template: dict[str, Any]) -> None:
    key = next(r for r in template["resources"] if r["type"] == "Microsoft.KeyVault/vaults/keys")
    assert key["properties"]["kty"] == "EC-HSM" and key["properties"]["curveName"] == "P-256K"
    for member, index in (("bank-a", 0), ("bank-b", 3)):
        deployment = Deployment(template, {"vaultName": "kv", "member": member, **_required()})
        deployment.copy_index = index
        assert deployment.value(key["name"]) == f"kv/{validator_key_name(member, index)}"


def _required() -> dict[str, Any]:
    from tests.azure.conftest import parameter_values

    values = parameter_values(FOUNDER)
    return {k: v for k, v in values.items() if k not in ("vaultName", "member")}


# -- what comes in -----------------------------------------------------------------------


def rules(deployment: Deployment) -> dict[str, dict[str, Any]]:
    (nsg,) = deployed(deployment, "Microsoft.Network/networkSecurityGroups")
    return {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"]}


@pytest.mark.parametrize("path", [FOUNDER, JOINER], ids=["founder", "joiner"])
def test_nsg_lets_in_only_what_must_come_in(path: Path, deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(path)
    values = deployment.params
    found = rules(deployment)
    priorities = sorted((r["priority"], n) for n, r in found.items())
    assert priorities[-1] == (4096, "deny-everything-else")
    assert found["deny-everything-else"]["access"] == "Deny"
    assert found["deny-everything-else"]["sourceAddressPrefix"] == "*"
    for name, rule in found.items():
        if rule["access"] == "Allow":
            sources = rule.get("sourceAddressPrefixes") or [rule.get("sourceAddressPrefix")]
            assert not {"*", "Internet", "0.0.0.0/0"} & set(sources), name
            assert rule["priority"] < 4096
    assert found["devp2p"]["sourceAddressPrefixes"] == [
        *values["peerSources"],
        values["subnetPrefix"],
    ]
    assert found["devp2p"]["destinationPortRanges"] == [str(values["p2pPort"])]
    expected_peers = values["peerSources"] or [values["subnetPrefix"]]
    assert found["consortium-data"]["sourceAddressPrefixes"] == expected_peers
    assert found["applications"]["sourceAddressPrefixes"] == values["applicationSources"]
    assert set(found["applications"]["destinationPortRanges"]) == {
        str(values["rpcPort"]),
        str(values["monitorPort"]),
    }
    probes = found["load-balancer-probes"]
    assert probes["sourceAddressPrefix"] == "AzureLoadBalancer"
    assert set(probes["destinationPortRanges"]) == {
        str(values[k]) for k in ("healthPort", "dataPort", "monitorPort")
    }
    assert (found["ssh"]["access"], found["ssh"]["sourceAddressPrefixes"]) == (
        "Deny",
        ["0.0.0.0/0"],
    )


def test_ssh_opens_only_to_the_sources_named(deploy: Callable[..., Deployment]) -> None:
    ssh = rules(deploy(FOUNDER, sshSources=["10.99.0.0/24"]))["ssh"]
    assert (ssh["access"], ssh["sourceAddressPrefixes"]) == ("Allow", ["10.99.0.0/24"])


def test_the_joiner_admits_the_founders_network_and_the_founder_its_own(
    deploy: Callable[..., Deployment],
) -> None:
    assert deploy(JOINER).params["peerSources"] == ["10.1.0.0/16"]
    assert deploy(FOUNDER).params["peerSources"] == ["10.2.0.0/16"]


def test_public_peering_gives_each_node_a_nat_port_and_keeps_json_rpc_private(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(FOUNDER, peering="public", peerSources=["198.51.100.0/28"],
                        peerNetwork="0.0.0.0/0")  # fmt: skip
    balancers = {lb["name"]: lb for lb in deployed(deployment, "Microsoft.Network/loadBalancers")}
    public, internal = balancers["lbe-poactl-bank-a"], balancers["lbi-poactl-bank-a"]
    (nat,) = public["properties"]["inboundNatRules"]
    props = nat["properties"]
    assert props["backendPort"] == Ports().p2p and "backendAddressPool" in props  # NAT rule V2
    assert props["frontendPortRangeEnd"] - props["frontendPortRangeStart"] + 1 >= 64
    assert "inboundNatPools" not in public["properties"]
    public_ports = {
        r["properties"]["frontendPort"] for r in public["properties"]["loadBalancingRules"]
    }
    assert Ports().http not in public_ports  # JSON-RPC stays on the internal frontend
    assert {r["name"] for r in internal["properties"]["loadBalancingRules"]} == {
        "json-rpc",
        "consortium-data",
        "monitor",
    }
    # the bank's own nodes dial each other through the public frontend: its egress is let in
    assert "203.0.113.10/32" in rules(deployment)["devp2p"]["sourceAddressPrefixes"]
    assert deployment.output("consortiumDataUrl") == "http://203.0.113.20:8780/consortium"
    private = deploy(FOUNDER)
    assert deployed(private, "Microsoft.Network/loadBalancers")[0]["name"] == "lbi-poactl-bank-a"
    assert len(deployed(private, "Microsoft.Network/loadBalancers")) == 1
    assert private.output("consortiumDataUrl") == "http://10.1.0.254:8780/consortium"


# -- the VMs ---------------------------------------------------------------------------


def test_health_extension_probes_the_agents_health_and_repairs_never_replace(
    deploy: Callable[..., Deployment],
) -> None:
    (vmss,) = deployed(deploy(FOUNDER), "Microsoft.Compute/virtualMachineScaleSets")
    props = vmss["properties"]
    assert props["orchestrationMode"] == "Flexible"
    (health,) = props["virtualMachineProfile"]["extensionProfile"]["extensions"]
    p = health["properties"]
    assert (p["publisher"], p["type"], p["typeHandlerVersion"]) == (
        "Microsoft.ManagedServices",
        "ApplicationHealthLinux",
        "1.0",
    )  # binary states: poactl's /health answers 200 or 503
    assert p["settings"] == {**p["settings"], "protocol": "http", "port": Ports().health,
                             "requestPath": "/health"}  # fmt: skip
    repairs = props["automaticRepairsPolicy"]
    assert repairs["enabled"] and repairs["repairAction"] == "Restart"
    assert vmss["sku"]["capacity"] == 3  # validators 2 + spares 1
    assert props["virtualMachineProfile"]["osProfile"]["linuxConfiguration"][
        "disablePasswordAuthentication"
    ]


def accepted_options() -> set[str]:
    """The options install_agent.sh's argument loop takes."""
    loop = INSTALLER.read_text().split("while [ $# -gt 0 ]", 1)[1].split("done", 1)[0]
    return set(re.findall(r"--[a-z][a-z0-9-]+", loop)) - {"--help"}


def test_the_boot_passes_exactly_options_install_agent_accepts() -> None:
    settings = {
        "member": "bank-b", "joinFrom": "http://10.1.0.254:8780/consortium",
        "peering": "public", "peerNetwork": "0.0.0.0/0", "clientId": "x",
        "vaultUrl": "https://kv.vault.azure.net/", "blobEndpoint": "https://s.blob.core.windows.net/",
        "containers": CONTAINERS, "artifacts": {"wheel": "poactl.whl", "wheelhouse": "w.tar"},
        "runtime": "docker", "image": "ethereum/client-go:v1.13.15",
        "ports": {"p2p": 30303, "http": 8545, "health": 8745, "data": 8780, "monitor": 8845},
    }  # fmt: skip
    args = boot.install_arguments(
        settings, node="bank-b-poa000001", private_ip="10.2.0.4", advertise="203.0.113.20:30400",
        joined="bank-a", wheelhouse=Path("/opt/poactl/dist/wheels"),
    )  # fmt: skip
    flags = [a for a in args if a.startswith("--")]
    assert len(flags) == len(set(flags))
    assert set(flags) <= accepted_options(), set(flags) - accepted_options()
    # every value the template hands the VM reaches agent.yaml or a unit
    given = dict(zip(args[::2], args[1::2], strict=True))
    assert given["--consortium-data"] == "bank-a=http://10.1.0.254:8780/consortium"
    assert given["--shared-from"] == "bank-a"
    assert given["--publish-container"] == CONTAINERS["publish"]
    assert given["--container"] == CONTAINERS["store"]
    assert given["--storage-account-url"] == "https://s.blob.core.windows.net"
    assert given["--advertise"] == "203.0.113.20:30400"
    assert given["--health-host"] == "0.0.0.0"


def test_install_agent_documents_every_option_it_accepts() -> None:
    usage = INSTALLER.read_text().split("set -euo pipefail", 1)[0]
    assert accepted_options() <= set(re.findall(r"--[a-z][a-z0-9-]+", usage))
