"""The boot rehearsal: two banks deploy infra/azure/poactl-bank.json, one founding, one
joining from the URL the founder's deployment outputs, on this machine.

    python -m tests.azure.rehearsal SPEC.json RESULT.json   (inside the "cloud" netns)

`tests/azure/test_rehearsal.py` makes the network namespaces (the "cloud" with a bridge,
one per VM) and the spec, runs this inside the cloud namespace, and checks the result.
Here, per bank: the template is evaluated with the bank's parameter file (rendered by
`poactl azure params`) as Azure would, with the emulators standing for the resources it
creates; the containers it declares are made and the operator's artifacts uploaded; each
VM then runs the custom data (`vm.py`: cloud-init's write_files and runcmd, then the
units' ExecStart). Bank A founds. Bank B boots with joinFrom = bank A's output
consortiumDataUrl. Bank A's operator then admits bank B on chain, deploys the credit
registry and shares the pseudonym secret; both banks seal, and a credit record written
by A is read by B, each through its own load balancer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import yaml
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient

from orchestrator.azure import roles
from orchestrator.boundaries import Store, Vault
from orchestrator.config import PublishSettings, StoreSettings
from orchestrator.credit.client import CreditClient
from orchestrator.credit.deployment import ConsortiumResolver
from orchestrator.credit.records import Record
from orchestrator.geth.clique import block_signer
from orchestrator.governance import Governance
from orchestrator.network.create import read_member
from orchestrator.network.names import PSEUDONYM_SECRET_NAME, admin_key_name
from orchestrator.vault.azure_kv import AzureKeyVault
from orchestrator.wiring import make_store, open_consortium_data
from tests.azure.arm_eval import Deployment
from tests.azure.rehearsal import platform
from tests.azure.rehearsal.pki import Authority
from tests.azure.rehearsal.platform import BankCloud, EmulatorCredential, Imds, VmSpec
from tests.azure.rehearsal.wheels import poactl_wheel, wheelhouse_tar

REPO = Path(__file__).resolve().parents[3]
VM_SCRIPT = Path(__file__).with_name("vm.py")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[rehearsal +{time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


ABORTS: list[Callable[[], str | None]] = []  # why waiting is pointless (a VM gave up)


def wait(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for abort in ABORTS:
            reason = abort()
            if reason:
                raise RuntimeError(f"{what}: {reason}")
        try:
            found = check()
            if found:
                return found
        except Exception as e:  # the thing waited for is not there yet
            last = e
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = Request(url, body.encode(), {"Content-Type": "application/json"})
    with urlopen(request, timeout=5) as answer:  # the rehearsal's own load balancer
        return json.loads(answer.read())["result"]


def answers(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


# -- one bank's deployment ---------------------------------------------------------------


class Bank:
    def __init__(self, spec: dict[str, Any], template: dict[str, Any], workdir: Path) -> None:
        self.values = dict(spec["parameters"])
        self.member = self.values["member"]
        self.workdir = workdir / self.member
        self.workdir.mkdir(parents=True, exist_ok=True)
        vms = [VmSpec(**vm) for vm in spec["vms"]]
        self.cloud = BankCloud(
            member=self.member, storage_account=self.values["storageAccountName"],
            vault_name=self.values["vaultName"], blob_ip=spec["blob_ip"],
            vault_ip=spec["vault_ip"], frontend_ip=self.values["frontendIp"],
            client_id=spec["client_id"], vms=vms, workdir=self.workdir,
        )  # fmt: skip
        # What Azure would answer for the resources this deployment creates.
        references = {
            f"Microsoft.KeyVault/vaults/{self.cloud.vault_name}": {
                "vaultUri": f"https://{self.cloud.vault_host}/"
            },
            f"Microsoft.Storage/storageAccounts/{self.cloud.storage_account}": {
                "primaryEndpoints": {"blob": f"https://{self.cloud.blob_host}/"}
            },
            f"Microsoft.ManagedIdentity/userAssignedIdentities/id-poactl-{self.member}": {
                "clientId": spec["client_id"], "principalId": spec["principal_id"],
            },
        }  # fmt: skip
        self.deployment = Deployment(template, self.values, references)
        self.runners: list[subprocess.Popen[bytes]] = []

    @property
    def rpc_url(self) -> str:
        return f"http://{self.cloud.frontend_ip}:{self.values['rpcPort']}"

    def vault_roles(self) -> set[str]:
        """The role names the template gives the VMs' identity on the vault."""
        found = set()
        for resource in self.deployment.resources("Microsoft.Authorization/roleAssignments"):
            if "condition" in resource and not self.deployment.value(resource["condition"]):
                continue
            evaluated = self.deployment.value(resource)
            if evaluated["scope"].startswith("Microsoft.KeyVault/vaults/"):
                guid = evaluated["properties"]["roleDefinitionId"].rsplit("/", 1)[1]
                found.add(roles.ROLE_NAMES[guid])
        return found

    def cloud_config(self) -> dict[str, Any]:
        vmss = self.deployment.resources("Microsoft.Compute/virtualMachineScaleSets")[0]
        encoded = self.deployment.value(
            vmss["properties"]["virtualMachineProfile"]["osProfile"]["customData"]
        )
        text = base64.b64decode(encoded).decode()
        (self.workdir / "custom-data.yaml").write_text(text)
        config: dict[str, Any] = yaml.safe_load(text)
        return config

    def create_containers_and_upload(self, artifacts: dict[str, Path]) -> None:
        """What the deployment creates (its containers) and the operator uploads."""
        service = BlobServiceClient(
            self.cloud.account_url,
            credential=AzureNamedKeyCredential(self.cloud.storage_account, platform.ACCOUNT_KEY),
        )
        for resource in self.deployment.resources(
            "Microsoft.Storage/storageAccounts/blobServices/containers"
        ):
            container = self.deployment.value(resource["name"]).rsplit("/", 1)[1]
            service.create_container(container)
        artifacts_container = service.get_container_client("artifacts")
        for name, path in artifacts.items():
            with path.open("rb") as data:
                artifacts_container.upload_blob(name, data, overwrite=True)

    def boot(self, ca_pem: str, geth_dir: str) -> None:
        config = self.cloud_config()
        files = []
        for item in config["write_files"]:
            raw = item["content"]
            data = base64.b64decode(raw) if item.get("encoding") == "b64" else raw.encode()
            files.append({"path": item["path"], "permissions": item.get("permissions", "0644"),
                          "content_b64": base64.b64encode(data).decode()})  # fmt: skip
        for vm in self.cloud.vms:
            root = self.workdir / vm.name
            root.mkdir(parents=True, exist_ok=True)
            plan = {
                "root": str(root),
                "hosts": {self.cloud.blob_host: self.cloud.blob_ip,
                          self.cloud.vault_host: self.cloud.vault_ip},
                "ca": ca_pem,
                "write_files": files,
                "runcmd": config["runcmd"],
                "env": {
                    "PATH": f"{geth_dir}:{SYSTEM_PATH}",
                    "LANG": "C.UTF-8",
                    "HOME": "/root",
                    # the VM's trust store: the image's plus the rehearsal's CA
                    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
                    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
                    # pip writes no .pyc at install (Python compiles at first import): the
                    # install is what makes a VM's boot slow on a 2-core machine
                    "PIP_NO_COMPILE": "1",
                },
            }  # fmt: skip
            plan_file = root / "plan.json"
            plan_file.write_text(json.dumps(plan))
            log = (root / "vm.log").open("ab")
            self.runners.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        vm.namespace,
                        "/usr/bin/python3",
                        str(VM_SCRIPT),
                        str(plan_file),
                    ],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        say(f"{self.member}: {len(self.cloud.vms)} VM(s) booting from the custom data")
        ABORTS.append(self.failed)

    def failed(self) -> str | None:
        """Why a VM of this bank stopped (its runner exits only when nothing runs)."""
        for vm, runner in zip(self.cloud.vms, self.runners, strict=True):
            if runner.poll() is not None:
                tail = (self.workdir / vm.name / "vm.log").read_text(errors="replace")[-600:]
                return f"VM {vm.name} of {self.member} stopped: {tail}"
        return None

    def stop(self) -> None:
        for runner in self.runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGTERM)
        for runner in self.runners:
            try:
                runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait()

    def head(self) -> int:
        """The bank's head: the highest of its VMs' nodes (asked directly)."""
        heads = []
        for vm in self.cloud.vms:
            try:
                heads.append(
                    int(rpc(f"http://{vm.ip}:{self.values['rpcPort']}", "eth_blockNumber"), 16)
                )
            except OSError:
                continue
        return max(heads, default=-1)

    def operate(self, *args: str) -> str:
        """`poactl azure operate ARGS` on the bank's first VM, as root with the VM's identity
        (what `az vm run-command invoke` does): in the VM's mount and network namespaces."""
        runner = self.runners[0]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "AZURE_CLIENT_ID": self.cloud.client_id,
            "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
            "HOME": "/root",
        }
        argv = ["nsenter", f"--target={runner.pid}", "--mount", "--net", "--", "env", "-i",
                *(f"{k}={v}" for k, v in env.items()), "/opt/poactl/venv/bin/poactl", "azure",
                "operate", *args]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        say(f"{self.member}$ poactl azure operate {' '.join(args)}\n{done.stdout.strip()}")
        if done.returncode != 0:
            raise RuntimeError(f"poactl azure operate {args[0]}: {done.stderr.strip()}")
        return done.stdout

    # -- the bank's operator, with its own credentials ---------------------------------

    def vault(self) -> Vault:
        assert self.cloud.kv is not None
        return AzureKeyVault(
            f"https://{self.cloud.vault_ip}", credential=EmulatorCredential(self.cloud.kv),
            connection_verify=os.environ["REQUESTS_CA_BUNDLE"], verify_challenge_resource=False,
        )  # fmt: skip

    def store(self, key_file: Path, *, reads: dict[str, str], shared_from: str | None) -> Store:
        account = self.cloud.account_url
        return make_store(
            StoreSettings(
                kind="azure", account_url=account, container="poactl", account_key_file=key_file,
                publish=PublishSettings(kind="azure", account_url=account, container="consortium",
                                        account_key_file=key_file),
                consortium_data=reads, shared_from=shared_from,
            ),
            member=self.member,
        )  # fmt: skip


def signers_since(url: str, start: int) -> set[str]:
    head = int(rpc(url, "eth_blockNumber"), 16)
    found = set()
    for number in range(max(1, start), head + 1):
        signer = block_signer(rpc(url, "eth_getBlockByNumber", [hex(number), False]))
        if signer:
            found.add(signer.lower())
    return found


def rehearse(spec: dict[str, Any], result: dict[str, Any]) -> None:
    workdir = Path(spec["workdir"])
    template = json.loads((REPO / "infra/azure/poactl-bank.json").read_text())
    founder, joiner = (Bank(b, template, workdir) for b in spec["banks"])
    banks = [founder, joiner]
    authority = Authority(workdir / "pki")
    bundle = authority.bundle(workdir / "pki" / "bundle.pem")
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)  # the operator's trust store
    key_file = workdir / "account.key"
    key_file.write_text(platform.ACCOUNT_KEY)
    artifacts_dir = workdir / "artifacts"
    wheel = poactl_wheel(REPO, artifacts_dir)
    artifacts = {
        "install_agent.sh": REPO / "scripts/install_agent.sh",
        wheel.name: wheel,
        founder.values["wheelhouse"]: wheelhouse_tar(REPO, artifacts_dir),
    }
    say(f"artifacts: {', '.join(artifacts)}")
    timings: dict[str, float] = {}
    result["timings"] = timings
    try:
        for bank in banks:
            c = bank.cloud
            cert, key = authority.issue(f"{bank.member}-blob", [c.blob_host], [c.blob_ip])
            platform.start_azurite(c, cert, key)
            cert, key = authority.issue(f"{bank.member}-kv", [c.vault_host], [c.vault_ip])
            platform.start_vault(c, cert, key, bank.vault_roles())
            result.setdefault("vault_roles", {})[bank.member] = sorted(bank.vault_roles())
        for bank in banks:
            wait("Azurite", lambda b=bank: answers(b.cloud.blob_ip, 443), 60, 0.2)
            bank.create_containers_and_upload(artifacts)
        ports = {
            "rpc": founder.values["rpcPort"],
            "data": founder.values["dataPort"],
            "monitor": founder.values["monitorPort"],
            "health": founder.values["healthPort"],
        }
        balancers = platform.haproxy_config([b.cloud for b in banks], ports)
        with Imds([b.cloud for b in banks]).running(), platform.load_balancers(balancers, workdir):
            _scenario(founder, joiner, key_file, authority.pem, spec["geth_dir"], result)
    finally:
        for bank in banks:
            bank.stop()
        for bank in banks:
            platform.stop_bank(bank.cloud)


def _scenario(
    founder: Bank, joiner: Bank, key_file: Path, ca_pem: str, geth_dir: str,
    result: dict[str, Any],
) -> None:  # fmt: skip
    timings = result["timings"]
    # -- bank A founds -------------------------------------------------------------------
    founder.boot(ca_pem, geth_dir)
    # Bank B's VMs boot at the same time, as a bank deploying right after the founder's
    # deployment gave its outputs: they wait for the founder's data endpoint.
    joiner.boot(ca_pem, geth_dir)
    wait("bank-a sealing (block 3)", lambda: founder.head() >= 3, 420)
    timings["founder_sealing"] = time.monotonic() - STARTED
    say(f"bank-a seals: block {founder.head()}")
    data_url = founder.deployment.output("consortiumDataUrl")
    result["founder_data_url"] = data_url
    result["joiner_join_from"] = joiner.values["joinFrom"]
    # -- bank B joins from the URL bank A's deployment outputs ------------------------
    joiner_url = joiner.deployment.output("consortiumDataUrl")
    a_store = founder.store(key_file, reads={"bank-b": joiner_url}, shared_from=None)
    a_vault = founder.vault()
    info = wait("bank-b's member descriptor at its data endpoint",
                lambda: read_member(open_consortium_data(joiner_url), "bank-b"), 420)  # fmt: skip
    timings["joiner_published"] = time.monotonic() - STARTED
    a_head = founder.head()
    wait("bank-b's node synced", lambda: joiner.head() >= a_head, 240)
    timings["joiner_synced"] = time.monotonic() - STARTED
    say(f"bank-b follows the chain; its validators: {', '.join(info.signers)}")
    # -- bank A's operator, on one of its VMs: secret and registry, bank B's admission ----
    joined_at = founder.head()
    founder.operate("init")
    founder.operate("admit", "bank-b", "--data", joiner_url)
    admin_key = a_vault.get_secret(admin_key_name("bank-a"))
    assert admin_key is not None
    gov = Governance(founder.rpc_url, admin_key=admin_key)
    wait("bank-b a member", lambda: gov.is_member(info.admin), 60)
    founder.operate("share-secret", "bank-b", "--data", joiner_url)
    timings["joiner_admitted"] = time.monotonic() - STARTED
    # -- both banks seal -------------------------------------------------------------------
    b_signers = {s.lower() for s in info.signers}
    a_info = read_member(a_store, "bank-a")
    assert a_info is not None
    a_signers = {s.lower() for s in a_info.signers}
    sealed = wait(
        "blocks sealed by bank-b's validator",
        lambda: b_signers & signers_since(founder.rpc_url, joined_at),
        300,
        2,
    )
    timings["joiner_sealing"] = time.monotonic() - STARTED
    seen = signers_since(founder.rpc_url, joined_at)
    result["signers_since_admission"] = sorted(seen)
    result["founder_signers"], result["joiner_signers"] = sorted(a_signers), sorted(b_signers)
    say(f"both banks seal: {sorted(seen)} (bank-b's {sorted(sealed)})")
    # -- a credit record written by A, read by B ----------------------------------------
    b_vault = joiner.vault()
    wait("bank-b's vault holds the pseudonym secret (its leader took it)",
         lambda: b_vault.get_secret(PSEUDONYM_SECRET_NAME) is not None, 120)  # fmt: skip
    access = ConsortiumResolver(a_store, endpoints={"bank-a": founder.rpc_url},
                                vault=lambda _b: a_vault).resolve("bank-a")  # fmt: skip
    writer = CreditClient.of(access)
    subject = writer.subject("123-45-6789")
    today = dt.date.today()
    record = Record(
        account_ref="REHEARSAL-0001", portfolio_type="I", account_type="00",
        date_opened=today - dt.timedelta(days=400),
        date_of_account_information=today - dt.timedelta(days=1), credit_limit=0,
        highest_credit=20_000, current_balance=15_000, amount_past_due=0, account_status="11",
        payment_history="000000000000BBBBBBBBBBBB",
    )  # fmt: skip
    written = writer.report(subject, record).wait(timeout=60)
    say(f"bank-a wrote a tradeline in block {written.block_number}")
    b_store = joiner.store(key_file, reads={"bank-a": data_url}, shared_from="bank-a")
    b_access = ConsortiumResolver(b_store, endpoints={"bank-b": joiner.rpc_url},
                                  vault=lambda _b: b_vault).resolve("bank-b")  # fmt: skip
    reader = CreditClient.of(b_access)
    found = wait("bank-b reads bank-a's record",
                 lambda: reader.get(reader.subject("123-45-6789")).tradelines, 60)  # fmt: skip
    (tradeline,) = found
    result["credit"] = {
        "written_block": written.block_number,
        "furnisher": tradeline.furnisher,
        "account_ref": tradeline.record.account_ref,
        "current_balance": tradeline.record.current_balance,
        "writer": writer.furnisher,
    }
    timings["credit_read"] = time.monotonic() - STARTED
    say(f"bank-b read {tradeline.record.account_ref} by {tradeline.furnisher}")
    result["ok"] = True


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    result: dict[str, Any] = {"ok": False}
    try:
        rehearse(spec, result)
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        result["seconds"] = round(time.monotonic() - STARTED, 1)
        Path(argv[2]).write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
