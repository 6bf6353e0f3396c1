"""One founding bank deployed to real Azure, then deleted. Opt in with
POACTL_AZURE_LIVE=1 and a logged-in Azure CLI (`az login`); it costs money for the
minutes it runs. It has never been run: no machine this project runs on reaches Azure.

    POACTL_AZURE_LIVE=1 AZURE_SUBSCRIPTION_ID=... POACTL_AZURE_LOCATION=westeurope \\
      POACTL_AZURE_SSH_KEY=~/.ssh/id_ed25519.pub POACTL_AZURE_WHEEL=dist/poactl-...whl \\
      .venv/bin/pytest tests/azure/test_live.py -s
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.azure.params import Choices, render
from orchestrator.config import load_config

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("POACTL_AZURE_LIVE") != "1",
        reason="live Azure is opt-in: POACTL_AZURE_LIVE=1 with a subscription (docs/azure.md)",
    ),
]


def az(*args: str, timeout: float = 1800) -> Any:
    result = subprocess.run(["az", *args, "-o", "json"], capture_output=True, text=True,
                            timeout=timeout, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_a_founding_bank_deploys_boots_and_serves_its_data(tmp_path: Path) -> None:
    assert shutil.which("az"), "the Azure CLI is needed"
    subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
    location = os.environ.get("POACTL_AZURE_LOCATION", "westeurope")
    key = Path(os.environ["POACTL_AZURE_SSH_KEY"]).expanduser().read_text().strip()
    wheel = Path(os.environ["POACTL_AZURE_WHEEL"])
    operator_ip = os.environ.get("POACTL_AZURE_OPERATOR_IP")
    suffix = uuid.uuid4().hex[:6]
    group = f"rg-poactl-live-{suffix}"
    choices = Choices(member="bank-a", profile="small", name_suffix=suffix,
                      ssh_public_key=key,
                      operator_addresses=(operator_ip,) if operator_ip else ())  # fmt: skip
    values = render(load_config(), choices).parameters
    params = tmp_path / "bank-a.json"
    params.write_text(
        json.dumps(
            {
                "$schema": "",
                "contentVersion": "1.0.0.0",
                "parameters": {k: {"value": v} for k, v in values.items()},
            }
        )
    )
    az("account", "set", "--subscription", subscription)
    az("group", "create", "-n", group, "-l", location)
    try:
        deployment = az("deployment", "group", "create", "-g", group, "-n", "poactl-bank",
                        "--template-file", str(REPO / "infra/azure/poactl-bank.json"),
                        "--parameters", f"@{params}")  # fmt: skip
        outputs = deployment["properties"]["outputs"]
        account = values["storageAccountName"]
        for path in (REPO / "scripts/install_agent.sh", wheel):
            az("storage", "blob", "upload", "--auth-mode", "login", "--account-name", account,
               "-c", "artifacts", "-f", str(path), "-n", path.name, "--overwrite")  # fmt: skip
        vms = az("vmss", "list-instances", "-g", group, "-n", "vmss-poactl-bank-a")
        probe = (
            "for i in $(seq 1 120); do curl -sf http://127.0.0.1:8745/health && break; "
            "sleep 10; done; curl -s -X POST -H 'Content-Type: application/json' -d "
            '\'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}\' '
            f"{outputs['rpcEndpoint']['value']}; curl -s "
            f"'{outputs['consortiumDataUrl']['value']}?restype=container&comp=list'"
        )
        started = time.monotonic()
        answer = az("vm", "run-command", "invoke", "-g", group, "-n", vms[0]["name"],
                    "--command-id", "RunShellScript", "--scripts", probe)  # fmt: skip
        text = json.dumps(answer)
        print(f"boot and probe took {time.monotonic() - started:.0f} s: {text[:2000]}")
        assert "members/bank-a.json" in text
        assert '"result"' in text
    finally:
        az("group", "delete", "-n", group, "--yes", "--no-wait")
