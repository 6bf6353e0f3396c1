"""The bank's validator VMs: a scale set in Flexible orchestration.

Each VM boots from the custom data (`cloudinit`), runs as the bank's user-assigned
identity, and reports its health through the Application Health extension (binary
states, version 1.0) on the agent's `/health`, which answers 200 or 503 on loopback,
where the extension probes. Automatic repairs restart a VM that stays unhealthy past a
90-minute grace period; they never replace or reimage it, so a node that is only
catching up keeps its chain. Upgrades are manual: a new image means a new datadir.
"""

from __future__ import annotations

from orchestrator.azure.arm import COMPUTE, Json, p, resource, rid, v, x
from orchestrator.azure.cloudinit import custom_data
from orchestrator.azure.network import LB, backend_pools, subnet_id
from orchestrator.azure.platform import CONTAINER, CONTAINERS, STORAGE_ACCOUNT, UAI, VAULT

VMSS = "Microsoft.Compute/virtualMachineScaleSets"
IMAGE = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"}
REPAIR_GRACE = "PT90M"


def health_extension() -> Json:
    return {
        "name": "health",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": "1.0",
            "autoUpgradeMinorVersion": True,
            "settings": {
                "protocol": "http",
                "port": x(p("healthPort")),
                "requestPath": "/health",
                "intervalInSeconds": 5,
                "numberOfProbes": 1,
            },
        },
    }


def scale_set(extensions: list[Json]) -> Json:
    nic = {
        "name": "nic",
        "properties": {
            "primary": True,
            "enableAcceleratedNetworking": False,
            "ipConfigurations": [
                {
                    "name": "ipv4",
                    "properties": {
                        "primary": True,
                        "privateIPAddressVersion": "IPv4",
                        "subnet": {"id": x(subnet_id())},
                        "loadBalancerBackendAddressPools": backend_pools(),
                    },
                }
            ],
        },
    }
    profile = {
        "osProfile": {
            "computerNamePrefix": "poa",
            "adminUsername": x(p("adminUsername")),
            "customData": custom_data(),
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {
                            "path": x(
                                f"format('/home/{{0}}/.ssh/authorized_keys', {p('adminUsername')})"
                            ),
                            "keyData": x(p("sshPublicKey")),
                        }
                    ]
                },
                "provisionVMAgent": True,
                "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"},
            },
        },
        "storageProfile": {
            "imageReference": IMAGE,
            "osDisk": {
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "diskSizeGB": 64,
                "managedDisk": {"storageAccountType": "Premium_LRS"},
            },
        },
        "networkProfile": {
            "networkApiVersion": "2020-11-01",
            "networkInterfaceConfigurations": [nic],
        },
        "securityProfile": {"encryptionAtHost": x(p("encryptionAtHost"))},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        "extensionProfile": {"extensions": extensions},
    }
    depends = [
        x(rid(UAI, v("identityName"))),
        x(rid(LB, v("ilbName"))),
        x(rid(VAULT, p("vaultName"))),
        x(rid(STORAGE_ACCOUNT, p("storageAccountName"))),
        x(rid(LB, v("elbName"))),  # public peering only (ARM skips a resource not deployed)
        *(x(rid(CONTAINER, p("storageAccountName"), "'default'", f"'{c}'"))
          for c in CONTAINERS.values()),
    ]  # fmt: skip
    return resource(
        VMSS, COMPUTE, x(v("vmssName")),
        {
            "orchestrationMode": "Flexible",
            "platformFaultDomainCount": 1,
            "singlePlacementGroup": False,
            "upgradePolicy": {"mode": "Manual"},
            "automaticRepairsPolicy": {
                "enabled": True, "gracePeriod": REPAIR_GRACE, "repairAction": "Restart",
            },
            "virtualMachineProfile": profile,
        },
        sku={"name": x(p("vmSize")), "tier": "Standard", "capacity": x(p("instanceCount"))},
        identity={"type": "UserAssigned",
                  "userAssignedIdentities": {x(rid(UAI, v("identityName"))): {}}},
        depends_on=depends,
        skips={
            "CKV_AZURE_95": "an OS image upgrade reimages a VM: its chain and node key go "
            "and it resyncs; the bank rolls new images itself, one VM at a time while the "
            "spares seal (docs/azure.md), and the image patches itself in between",
        },
    )  # fmt: skip
