"""What the Azure deployment's tests share: the committed template and parameter files,
and a deployment of them evaluated offline (`arm_eval`) with stand-in values for what
only Azure knows (the vault's URI, the storage endpoint, the identity's client id)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.azure.arm_eval import Deployment

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra" / "azure"
TEMPLATE = INFRA / "poactl-bank.json"
PARAMETER_FILES = sorted((INFRA / "parameters").glob("*.json"))
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoactlRehearsalKeyNotARealOne0000000000 test"
CLIENT_ID = "6f1d3c2a-8b4e-4f0a-9c1d-2e3f4a5b6c7d"


def load_template() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return doc


def parameter_values(path: Path) -> dict[str, Any]:
    """A parameter file's values, plus what is given at deploy time (the SSH key)."""
    doc = json.loads(path.read_text())
    values = {name: spec["value"] for name, spec in doc["parameters"].items()}
    values.setdefault("sshPublicKey", SSH_KEY)
    return values


def azure_references(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What `reference()` answers in Azure for these parameters (made-up ids and IPs)."""
    member = values["member"]
    return {
        f"Microsoft.KeyVault/vaults/{values['vaultName']}": {
            "vaultUri": f"https://{values['vaultName']}.vault.azure.net/"
        },
        f"Microsoft.Storage/storageAccounts/{values['storageAccountName']}": {
            "primaryEndpoints": {
                "blob": f"https://{values['storageAccountName']}.blob.core.windows.net/"
            }
        },
        f"Microsoft.ManagedIdentity/userAssignedIdentities/id-poactl-{member}": {
            "clientId": CLIENT_ID,
            "principalId": "0a1b2c3d-0000-4000-8000-000000000001",
        },
        f"Microsoft.Network/publicIPAddresses/pip-poactl-{member}-egress": {
            "ipAddress": "203.0.113.10"
        },
        f"Microsoft.Network/publicIPAddresses/pip-poactl-{member}-p2p": {
            "ipAddress": "203.0.113.20"
        },
    }


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def deploy(template: dict[str, Any]) -> Callable[..., Deployment]:
    """deploy(parameter file or values, **overrides) -> the evaluated deployment."""

    def make(source: Path | dict[str, Any], **overrides: Any) -> Deployment:
        values = parameter_values(source) if isinstance(source, Path) else dict(source)
        values.update(overrides)
        return Deployment(template, values, azure_references(values))

    return make
