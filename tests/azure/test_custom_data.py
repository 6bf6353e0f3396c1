"""The scale set's custom data as Azure would render it for each parameter file: valid
for cloud-init (Debian's `cloud-init schema`), under the 64 KB limit, nothing secret in
it, and carrying exactly the boot script, settings and consortium file poactl ships."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.azure import cloudinit
from orchestrator.azure.platform import CONTAINERS
from orchestrator.config import parse_config
from tests.azure.arm_eval import Deployment
from tests.azure.conftest import CLIENT_ID, PARAMETER_FILES

SECRET_PATTERNS = [
    re.compile(p)
    for p in (
        r"sig=",  # a SAS signature
        r"(?i)accountkey",
        r"-----BEGIN",
        r"(?i)password",
        r"(?i)client_?secret",
        r"\b[0-9a-fA-F]{64}\b",  # a private key in hex
        r"[A-Za-z0-9+/]{86}==",  # a storage account key
    )
]


def custom_data(deployment: Deployment) -> str:
    vmss = deployment.resources("Microsoft.Compute/virtualMachineScaleSets")[0]
    encoded = deployment.value(
        vmss["properties"]["virtualMachineProfile"]["osProfile"]["customData"]
    )
    return base64.b64decode(encoded).decode()


def files_of(config: dict[str, Any]) -> dict[str, bytes]:
    out = {}
    for item in config["write_files"]:
        raw = item["content"]
        out[item["path"]] = base64.b64decode(raw) if item.get("encoding") == "b64" else raw.encode()
    return out


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=[p.name for p in PARAMETER_FILES])
def test_custom_data_is_small_secret_free_and_what_poactl_ships(
    path: Path, deploy: Callable[..., Deployment]
) -> None:
    deployment = deploy(path)
    text = custom_data(deployment)
    assert text.startswith("#cloud-config\n")
    assert len(text.encode()) <= cloudinit.MAX_CUSTOM_DATA
    config = yaml.safe_load(text)
    files = files_of(config)
    # every file as the VM gets it, and the rest of the custom data (base64 decoded, since
    # encoded text would hide a secret and look like an account key)
    plain = [dict(item, content="") for item in config["write_files"]]
    everything = yaml.safe_dump({**config, "write_files": plain}) + "".join(
        f.decode() for f in files.values()
    )
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(everything), pattern.pattern
    for item in config["write_files"]:
        assert isinstance(item["permissions"], str)  # 0644 unquoted is the integer 420
    assert files[cloudinit.BOOT_SCRIPT].decode() == cloudinit.boot_source()
    settings = json.loads(files[cloudinit.SETTINGS_FILE])
    values = deployment.params
    assert settings["member"] == values["member"]
    assert settings["joinFrom"] == values["joinFrom"]
    assert settings["clientId"] == CLIENT_ID
    assert settings["vaultUrl"] == f"https://{values['vaultName']}.vault.azure.net/"
    assert settings["containers"] == CONTAINERS
    assert settings["ports"] == {
        "p2p": values["p2pPort"], "http": values["rpcPort"], "health": values["healthPort"],
        "data": values["dataPort"], "monitor": values["monitorPort"],
    }  # fmt: skip
    consortium = parse_config(files[cloudinit.CONSORTIUM_FILE].decode(), source=str(path))
    assert consortium.members() == [values["member"]]
    assert ["python3", cloudinit.BOOT_SCRIPT, cloudinit.SETTINGS_FILE] in config["runcmd"]


CLOUD_INIT = shutil.which("cloud-init")


@pytest.mark.skipif(CLOUD_INIT is None, reason="Debian's cloud-init is not installed "
                    "(scripts/setup.sh installs it)")  # fmt: skip
@pytest.mark.parametrize("path", PARAMETER_FILES, ids=[p.name for p in PARAMETER_FILES])
def test_custom_data_passes_cloud_init_schema(
    path: Path, deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    assert CLOUD_INIT is not None
    config = tmp_path / "user-data.yaml"
    config.write_text(custom_data(deploy(path)))
    result = subprocess.run(
        [CLOUD_INIT, "schema", "--config-file", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.skipif(CLOUD_INIT is None, reason="Debian's cloud-init is not installed")
def test_cloud_init_schema_catches_a_broken_custom_data(tmp_path: Path) -> None:
    assert CLOUD_INIT is not None
    config = tmp_path / "user-data.yaml"
    config.write_text("#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 420\n")
    result = subprocess.run([CLOUD_INIT, "schema", "--config-file", str(config)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode != 0
