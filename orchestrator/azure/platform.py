"""The bank's identity, storage account, Key Vault and role assignments.

- A user-assigned identity for the scale set: its role assignments exist before the VMs
  and survive their re-creation; the VMs name it (AZURE_CLIENT_ID) so no other identity
  on the VM can be picked by mistake.
- The storage account: no shared-key access (tokens only), no public blob access, TLS
  1.2, HTTPS only, reachable from the bank's subnet (service endpoint) and the operator's
  addresses only. Three containers: the agents' store (blobs and leases), the bank's
  publication (its consortium data) and the boot artifacts.
- The Key Vault: RBAC authorization (set explicitly: the API's default is access
  policies), soft delete for 90 days, purge protection; premium SKU for HSM-backed keys.
- Role assignments from `roles.grants_for(custody)`, each scoped to one container or to
  the vault: nothing at the resource group, nothing on another bank's resources.
"""

from __future__ import annotations

from orchestrator.azure import roles
from orchestrator.azure.arm import (
    AUTHORIZATION,
    IDENTITY,
    KEYVAULT,
    STORAGE,
    Json,
    p,
    resource,
    rid,
    v,
    x,
)
from orchestrator.azure.network import VNET, subnet_id
from orchestrator.config import PublishSettings, StoreSettings

UAI = "Microsoft.ManagedIdentity/userAssignedIdentities"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
VAULT = "Microsoft.KeyVault/vaults"
KEY = "Microsoft.KeyVault/vaults/keys"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"

# The agents' defaults, so that the template and agent.yaml cannot disagree.
CONTAINERS: dict[str, str] = {
    "store": str(StoreSettings.model_fields["container"].default),
    "publish": str(PublishSettings.model_fields["container"].default),
    "artifacts": "artifacts",
}
RETENTION_DAYS = 90


def container_variable(key: str) -> str:
    """The template variable holding container `key`'s full name (account/default/name)."""
    return f"{key}Container"


def container_variables() -> dict[str, str]:
    account = p("storageAccountName")
    return {
        container_variable(key): x(f"format('{{0}}/default/{name}', {account})")
        for key, name in CONTAINERS.items()
    }


def identity() -> Json:
    return resource(UAI, IDENTITY, x(v("identityName")), {})


def _ip_rules(*, with_action: bool) -> str:
    """The operator's addresses as firewall rules (`ipRules`; storage's carry an action)."""
    action = ", 'action', 'Allow'" if with_action else ""
    entry = f"createObject('value', lambdaVariables('ip'){action})"
    return x(f"map({p('operatorSources')}, lambda('ip', {entry}))")


def storage_account() -> list[Json]:
    name = p("storageAccountName")
    account = resource(
        STORAGE_ACCOUNT, STORAGE, x(name),
        {
            "accessTier": "Hot",
            "allowBlobPublicAccess": False,
            "allowSharedKeyAccess": False,
            "allowCrossTenantReplication": False,
            "defaultToOAuthAuthentication": True,
            "minimumTlsVersion": "TLS1_2",
            "supportsHttpsTrafficOnly": True,
            "publicNetworkAccess": "Enabled",
            "networkAcls": {
                "bypass": "AzureServices",
                "defaultAction": "Deny",
                "virtualNetworkRules": [{"id": x(subnet_id()), "action": "Allow"}],
                "ipRules": _ip_rules(with_action=True),
            },
            "encryption": {
                "keySource": "Microsoft.Storage",
                "requireInfrastructureEncryption": True,
                "services": {"blob": {"enabled": True, "keyType": "Account"}},
            },
        },
        kind="StorageV2", sku={"name": "Standard_GRS"},
        depends_on=[x(rid(VNET, v("vnetName")))],
        skips={
            "CKV_AZURE_59": "public network access stays on for the subnet's service "
            "endpoint, but networkAcls deny by default: only the bank's node subnet and "
            "operatorSources get in (a private endpoint needs the private DNS zone of the "
            "bank's hub network, which this template does not own)",
            "CKV_AZURE_43": "the name is a parameter; `poactl azure params` renders 3-24 "
            "lowercase letters and digits and tests/azure checks each parameter file",
        },
    )  # fmt: skip
    service = resource(
        BLOB_SERVICE, STORAGE, x(f"format('{{0}}/default', {name})"),
        {
            "deleteRetentionPolicy": {"enabled": True, "days": 7},
            "containerDeleteRetentionPolicy": {"enabled": True, "days": 7},
        },
        located=False, depends_on=[x(rid(STORAGE_ACCOUNT, name))],
    )  # fmt: skip
    containers = [
        resource(
            CONTAINER,
            STORAGE,
            x(v(container_variable(key))),
            {"publicAccess": "None"},
            located=False,
            depends_on=[x(rid(BLOB_SERVICE, name, "'default'"))],
        )
        for key in CONTAINERS
    ]
    return [account, service, *containers]


def vault() -> Json:
    return resource(
        VAULT, KEYVAULT, x(p("vaultName")),
        {
            "tenantId": x("subscription().tenantId"),
            "sku": {"family": "A", "name": x(p("vaultSku"))},
            "enableRbacAuthorization": True,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": RETENTION_DAYS,
            "enablePurgeProtection": True,
            "enabledForDeployment": False,
            "enabledForDiskEncryption": False,
            "enabledForTemplateDeployment": False,
            "publicNetworkAccess": "Enabled",
            "networkAcls": {
                "bypass": "AzureServices",
                "defaultAction": "Deny",
                "virtualNetworkRules": [
                    {"id": x(subnet_id()), "ignoreMissingVnetServiceEndpoint": False}
                ],
                "ipRules": _ip_rules(with_action=False),
            },
        },
        depends_on=[x(rid(VNET, v("vnetName")))],
    )  # fmt: skip


def validator_keys() -> Json:
    """With `hsmKeys`: the bank's validator keys, made in the vault's HSM (EC-HSM, P-256K:
    secp256k1) before any VM boots; the leader finds them and creates none. ARM creates a
    key only if it is missing, so a redeployment never rotates one."""
    name = (
        f"format('{{0}}/{{1}}-validator-{{2}}-key', {p('vaultName')}, {p('member')}, copyIndex())"
    )
    return resource(
        KEY, KEYVAULT, x(name),
        {
            "kty": "EC-HSM",
            "curveName": "P-256K",
            "keyOps": ["sign", "verify"],
            "attributes": {"enabled": True, "exportable": False},
        },
        located=False,
        copy={"name": "validatorKeys",
              "count": x(f"if({p('hsmKeys')}, {p('validators')}, 0)")},
        depends_on=[x(rid(VAULT, p("vaultName")))],
        skips={"CKV_AZURE_40": "a validator key must not expire: an expired key stops "
               "its identity sealing; keys are rotated through governance (docs/azure.md)"},
    )  # fmt: skip


def _scope(scope: roles.Scope) -> tuple[str, str]:
    """(the `scope` property, the scope's resource id) of a grant."""
    if scope == "vault":
        return f"format('Microsoft.KeyVault/vaults/{{0}}', {p('vaultName')})", rid(
            VAULT, p("vaultName")
        )
    container = CONTAINERS[scope]
    path = (
        f"format('Microsoft.Storage/storageAccounts/{{0}}/blobServices/default/containers/"
        f"{container}', {p('storageAccountName')})"
    )
    return path, rid(CONTAINER, p("storageAccountName"), "'default'", f"'{container}'")


def role_assignments() -> list[Json]:
    """One assignment per grant, to the scale set's identity, on its one scope."""
    principal = f"reference({rid(UAI, v('identityName'))}, '{IDENTITY}').principalId"
    out = []
    for grant in roles.GRANTS:
        scope, scope_id = _scope(grant.scope)
        definition = f"subscriptionResourceId('{ROLE_DEFINITION}', '{grant.role}')"
        only = None if grant.custody is None else f"equals({p('custody')}, '{grant.custody}')"
        assignment = resource(
            ROLE_ASSIGNMENT, AUTHORIZATION,
            x(f"guid({scope_id}, {rid(UAI, v('identityName'))}, '{grant.role}')"),
            {
                "description": f"poactl {grant.name}: {roles.ROLE_NAMES[grant.role]}",
                "roleDefinitionId": x(definition),
                "principalId": x(principal),
                "principalType": "ServicePrincipal",
            },
            located=False, scope=x(scope), condition=only,
            depends_on=[x(rid(UAI, v("identityName"))), x(scope_id)],
        )  # fmt: skip
        out.append(assignment)
    return out


def resources() -> list[Json]:
    return [identity(), *storage_account(), vault(), validator_keys(), *role_assignments()]
