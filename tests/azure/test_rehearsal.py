"""The boot rehearsal: the exact custom data the template gives each VM, with the template's
parameters substituted, brings up a two-bank consortium on this machine.

Network namespaces stand for the banks' networks (one per VM, all on one bridge: private
peering) and for Azure around them (each bank's Azurite and Key Vault emulator under its
Azure names, IMDS at 169.254.169.254, HAProxy as each bank's internal load balancer);
`tests/azure/rehearsal/` runs the scenario inside them. Bank A founds; bank B deploys
with the consortium data URL bank A's deployment outputs, is admitted by bank A, seals,
and reads a credit record bank A wrote. Root only (namespaces, mounts); nothing leaves
the namespaces the test makes, and it removes them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.azure.params import Choices, render
from orchestrator.config import parse_config
from tests.azure.conftest import SSH_KEY

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / ".tools/node/node_modules/.bin/azurite-blob"
GETH_DIR = REPO / ".tools" / "bin"
CONSORTIUM = """\
chain_id: 7373
block_period: 2
members:
  bank-a: {validators: 1, spares: 1, custody: secrets}
  bank-b: {validators: 1, spares: 0, custody: keys}
supervision: {heartbeat_seconds: 5}
governance: {validator_floor: 1}
"""
TIMEOUT = 1200

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, mounts)"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("ip", "haproxy", "setpriv", "unshare", "nsenter")),
        reason="needs ip, haproxy, setpriv, unshare, nsenter (scripts/setup.sh installs haproxy)",
    ),
    pytest.mark.skipif(not AZURITE.exists(), reason="Azurite missing: run scripts/setup.sh"),
    pytest.mark.skipif(not (GETH_DIR / "geth").exists(), reason="geth missing: scripts/setup.sh"),
]


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


class Namespaces:
    """The rehearsal's network: a "cloud" namespace with a bridge, one namespace per VM."""

    def __init__(self, tag: str) -> None:
        self.cloud = f"poarh{tag}c"
        self.made: list[str] = []

    def create(self, platform_ips: list[str], vms: list[tuple[str, str]]) -> None:
        cloud = self.cloud
        sh("ip", "netns", "add", cloud)
        self.made.append(cloud)
        sh("ip", "-n", cloud, "link", "set", "lo", "up")
        sh("ip", "-n", cloud, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", cloud, "link", "set", "br0", "up")
        sh("ip", "-n", cloud, "addr", "add", "10.255.0.1/8", "dev", "br0")
        for ip in [*platform_ips, "169.254.169.254"]:
            sh("ip", "-n", cloud, "addr", "add", f"{ip}/32", "dev", "br0")
        for i, (namespace, ip) in enumerate(vms):
            sh("ip", "netns", "add", namespace)
            self.made.append(namespace)
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
            sh("ip", "-n", cloud, "link", "add", f"vm{i}", "type", "veth", "peer", "name",
               "eth0", "netns", namespace)  # fmt: skip
            sh("ip", "-n", cloud, "link", "set", f"vm{i}", "master", "br0", "up")
            sh("ip", "-n", namespace, "addr", "add", f"{ip}/8", "dev", "eth0")
            sh("ip", "-n", namespace, "link", "set", "eth0", "up")
            sh("ip", "-n", namespace, "route", "add", "169.254.169.254/32", "dev", "eth0")

    def destroy(self) -> None:
        """Stop what still runs in our namespaces (by pid), then remove them."""
        for namespace in reversed(self.made):
            for sig in ("TERM", "KILL"):
                pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                      text=True, check=False).stdout.split()  # fmt: skip
                for pid in pids:
                    subprocess.run(["kill", f"-{sig}", pid], check=False, capture_output=True)
                if pids and sig == "TERM":
                    time.sleep(2)
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)


def spec(workdir: Path, tag: str) -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    consortium = parse_config(CONSORTIUM, source="rehearsal consortium")
    banks, vms, platform_ips = [], [], []
    for i, (member, instances) in enumerate((("bank-a", None), ("bank-b", 1))):
        choices = Choices(member=member, profile="small", instances=instances,
                          runtime="process", wheelhouse="wheelhouse.tar")  # fmt: skip
        values = dict(render(consortium, choices).parameters, sshPublicKey=SSH_KEY)
        subnet = values["subnetPrefix"].rsplit(".", 1)[0]
        bank_vms = [
            {"name": f"poa{k:06d}", "namespace": f"poarh{tag}{member[-1]}{k}",
             "ip": f"{subnet}.{4 + k}"}
            for k in range(values["instanceCount"])
        ]  # fmt: skip
        blob_ip, vault_ip = f"10.255.1.{i + 1}", f"10.255.2.{i + 1}"
        platform_ips += [blob_ip, vault_ip, values["frontendIp"]]
        vms += [(vm["namespace"], vm["ip"]) for vm in bank_vms]
        banks.append({
            "parameters": values, "vms": bank_vms, "blob_ip": blob_ip, "vault_ip": vault_ip,
            "client_id": f"6f1d3c2a-8b4e-4f0a-9c1d-2e3f4a5b6c7{i}",
            "principal_id": f"0a1b2c3d-0000-4000-8000-00000000000{i}",
        })  # fmt: skip
    return (
        {"workdir": str(workdir), "geth_dir": str(vm_geth(workdir)), "banks": banks},
        vms,
        platform_ips,
    )


def vm_geth(workdir: Path) -> Path:
    """geth as a VM image would hold it: a copy any user may run. The agents run as the
    unprivileged `poactl` user, who cannot reach the repository's `.tools/bin` when a
    parent directory is private (a clone under `mktemp -d`, mode 0700)."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir(mode=0o755)
    shutil.copy2(GETH_DIR / "geth", bin_dir / "geth")
    return bin_dir


def test_two_banks_boot_from_the_templates_custom_data_found_join_seal_and_share_a_record(
    tmp_path: Path,
) -> None:
    tag = str(os.getpid() % 100000)
    workdir = Path(f"/tmp/poarh-{tag}")  # short: geth's IPC path and overlay options
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    plan, vms, platform_ips = spec(workdir, tag)
    (workdir / "spec.json").write_text(json.dumps(plan, indent=2))
    namespaces = Namespaces(tag)
    started = time.monotonic()
    try:
        namespaces.create(platform_ips, vms)
        with (workdir / "rehearsal.log").open("wb") as log:
            proc = subprocess.run(
                ["ip", "netns", "exec", namespaces.cloud, sys.executable, "-m",
                 "tests.azure.rehearsal", str(workdir / "spec.json"), str(workdir / "result.json")],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT, check=False,
            )  # fmt: skip
    finally:
        namespaces.destroy()
    elapsed = time.monotonic() - started
    output = (workdir / "rehearsal.log").read_text(errors="replace")
    result = json.loads((workdir / "result.json").read_text())
    print(output[-6000:])
    print(f"rehearsal: {elapsed:.0f} s, timings {result.get('timings')}")
    for big in ("artifacts", "bin"):  # 80 MB of wheels, and geth; the logs stay
        shutil.rmtree(workdir / big, ignore_errors=True)
    assert proc.returncode == 0 and result["ok"], _diagnose(workdir, result)
    # the URL bank B joined from is the one bank A's deployment outputs
    assert result["joiner_join_from"] == result["founder_data_url"]
    assert result["founder_data_url"] == "http://10.1.0.254:8780/consortium"
    # the vault roles the template gives each bank are enough for its custody
    assert result["vault_roles"] == {
        "bank-a": ["Key Vault Secrets Officer"],
        "bank-b": ["Key Vault Crypto Officer", "Key Vault Secrets Officer"],
    }
    seen = set(result["signers_since_admission"])
    assert seen & set(result["founder_signers"]) and seen & set(result["joiner_signers"])
    credit = result["credit"]
    assert (credit["account_ref"], credit["current_balance"]) == ("REHEARSAL-0001", 15_000)
    assert credit["furnisher"].lower() == credit["writer"].lower()
    shutil.rmtree(workdir, ignore_errors=True)


def _diagnose(workdir: Path, result: dict[str, Any]) -> str:
    """The error and the tail of every VM's logs (kept in the workdir)."""
    parts = [f"result: {json.dumps(result)[:2000]}"]
    for log in sorted(workdir.glob("bank-*/*/*.log"))[:20]:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        parts.append(f"--- {log.relative_to(workdir)}\n" + "\n".join(tail))
    return "\n".join(parts)
