"""The scale set's custom data: a #cloud-config that writes `boot.py`, its settings and
the consortium file, and runs `boot.py` once at each VM's first boot.

The settings are a JSON object the template builds from its parameters and its
resources' properties (the vault's URI, the storage account's blob endpoint, the
identity's client id), base64-encoded so that no value can break the YAML; the consortium
file travels the same way. Nothing secret is in it: Azure keeps custom data readable to
anyone who can read the VM model, and every credential comes from the managed identity.
"""

from __future__ import annotations

import base64
from importlib import resources

from orchestrator.azure.arm import IDENTITY, KEYVAULT, STORAGE, p, ref, v, x
from orchestrator.azure.platform import CONTAINERS, STORAGE_ACCOUNT, UAI, VAULT

BOOT_DIR = "/opt/poactl/boot"
SETTINGS_FILE = f"{BOOT_DIR}/settings.json"
CONSORTIUM_FILE = f"{BOOT_DIR}/consortium.yaml"
BOOT_SCRIPT = f"{BOOT_DIR}/boot.py"
MAX_CUSTOM_DATA = 65535  # bytes, decoded (VirtualMachineOSProfile.customData)


def boot_source() -> str:
    """`boot.py` as the VMs get it."""
    return resources.files("orchestrator.azure").joinpath("boot.py").read_text()


def cloud_config() -> str:
    """The #cloud-config text; `{0}` is the settings and `{1}` the consortium file, both
    base64 (an ARM `format()` string: every other brace is doubled)."""
    boot = base64.b64encode(boot_source().encode()).decode()
    docker = '{"log-driver": "json-file", "log-opts": {"max-size": "50m", "max-file": "3"}}'
    text = f"""#cloud-config
# poactl: the first boot of a validator VM (infra/azure/poactl-bank.json). boot.py
# installs and starts the agent with this VM's managed identity; nothing secret is here.
package_update: true
packages:
  - docker.io
  - python3
  - python3-venv
write_files:
  - path: /etc/docker/daemon.json
    permissions: "0644"
    content: |
      {docker}
  - path: {SETTINGS_FILE}
    permissions: "0644"
    encoding: b64
    content: @SETTINGS@
  - path: {CONSORTIUM_FILE}
    permissions: "0644"
    encoding: b64
    content: @CONSORTIUM@
  - path: {BOOT_SCRIPT}
    permissions: "0755"
    encoding: b64
    content: {boot}
runcmd:
  - [systemctl, enable, --now, docker]
  - [python3, {BOOT_SCRIPT}, {SETTINGS_FILE}]
"""
    escaped = text.replace("{", "{{").replace("}", "}}")
    return escaped.replace("@SETTINGS@", "{0}").replace("@CONSORTIUM@", "{1}")


def _object(*pairs: tuple[str, str]) -> str:
    return "createObject(" + ", ".join(f"'{k}', {value}" for k, value in pairs) + ")"


def boot_settings() -> str:
    """The settings object boot.py reads (an ARM expression, without brackets)."""
    vault = ref(VAULT, p("vaultName"), KEYVAULT)
    storage = ref(STORAGE_ACCOUNT, p("storageAccountName"), STORAGE)
    identity = ref(UAI, v("identityName"), IDENTITY)
    return _object(
        ("member", p("member")),
        ("joinFrom", p("joinFrom")),
        ("peering", p("peering")),
        ("peerNetwork", p("peerNetwork")),
        ("clientId", f"{identity}.clientId"),
        ("vaultUrl", f"{vault}.vaultUri"),
        ("blobEndpoint", f"{storage}.primaryEndpoints.blob"),
        ("containers", _object(*((k, f"'{c}'") for k, c in CONTAINERS.items()))),
        ("artifacts", _object(("wheel", p("poactlWheel")), ("wheelhouse", p("wheelhouse")))),
        ("runtime", p("runtime")),
        ("image", p("gethImage")),
        ("ports", _object(
            ("p2p", p("p2pPort")), ("http", p("rpcPort")), ("health", p("healthPort")),
            ("data", p("dataPort")), ("monitor", p("monitorPort")),
        )),
    )  # fmt: skip


def custom_data() -> str:
    """The scale set's `osProfile.customData`."""
    settings = f"base64(string({boot_settings()}))"
    return x(f"base64(format({v('cloudConfig')}, {settings}, base64({p('consortium')})))")
