"""What Azure provides around a bank's VMs, stood in on this machine for the rehearsal:
each bank's storage account (its own Azurite, HTTPS, tokens only) and Key Vault (its own
emulator, with the roles the template assigns), the instance metadata service (IMDS:
each VM's address and name, and managed-identity tokens from its bank's emulator), and
each bank's internal load balancer (HAProxy with the template's rules and probes).

Everything listens inside the rehearsal's "cloud" network namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken

from tests.services.keyvault_emulator import IMDS_PATH, KeyVaultEmulator

AZURITE = Path(__file__).resolve().parents[3] / ".tools/node/node_modules/.bin/azurite-blob"
ACCOUNT_KEY = "cG9hY3RsLXJlaGVhcnNhbC1hY2NvdW50LWtleS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA="


@dataclass
class VmSpec:
    name: str  # its computer name
    namespace: str
    ip: str


@dataclass
class BankCloud:
    """One bank's Azure: where its emulators listen and who its VMs are."""

    member: str
    storage_account: str
    vault_name: str
    blob_ip: str
    vault_ip: str
    frontend_ip: str
    client_id: str
    vms: list[VmSpec]
    workdir: Path
    kv: KeyVaultEmulator | None = None
    azurite: subprocess.Popen[bytes] | None = None
    roles: set[str] = field(default_factory=set)

    @property
    def blob_host(self) -> str:
        return f"{self.storage_account}.blob.core.windows.net"

    @property
    def vault_host(self) -> str:
        return f"{self.vault_name}.vault.azure.net"

    @property
    def account_url(self) -> str:
        """Path style on the emulator's address: how the operator's tools reach it."""
        return f"https://{self.blob_ip}/{self.storage_account}"


def start_azurite(bank: BankCloud, cert: Path, key: Path) -> None:
    """The bank's storage account: Azurite on 443 of its address, HTTPS, OAuth tokens."""
    location = bank.workdir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{bank.storage_account}:{ACCOUNT_KEY}"}
    log = (bank.workdir / "azurite.log").open("ab")
    bank.azurite = subprocess.Popen(
        [str(AZURITE), "--blobHost", bank.blob_ip, "--blobPort", "443", "--location",
         str(location), "--cert", str(cert), "--key", str(key), "--oauth", "basic",
         "--skipApiVersionCheck", "--loose", "--silent"],
        stdout=log, stderr=log, env=env, start_new_session=True,
    )  # fmt: skip


def start_vault(bank: BankCloud, cert: Path, key: Path, roles: set[str]) -> None:
    """The bank's Key Vault: the emulator on 443 of its address; the VMs' identity holds
    exactly the vault roles the template assigns it."""
    bank.kv = KeyVaultEmulator(
        bank.workdir / "kv", host=bank.vault_ip, port=443, certificate=(cert, key),
        public_url=f"https://{bank.vault_host}",
    )  # fmt: skip
    (bank.workdir / "kv").mkdir(parents=True, exist_ok=True)
    bank.kv.identities[bank.client_id] = set(roles)
    bank.roles = set(roles)
    bank.kv.start()


def stop_bank(bank: BankCloud) -> None:
    if bank.kv is not None:
        bank.kv.stop()
    if bank.azurite is not None and bank.azurite.poll() is None:
        bank.azurite.terminate()
        try:
            bank.azurite.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bank.azurite.kill()
            bank.azurite.wait()


class EmulatorCredential:
    """The operator's token for a bank's vault emulator (an identity with every role)."""

    def __init__(self, kv: KeyVaultEmulator) -> None:
        self.kv = kv

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        resource = scopes[0].removesuffix("/.default")
        status, _, body = self.kv.handle_token(
            f"{IMDS_PATH}?api-version=2018-02-01&resource={resource}&client_id=system",
            {"Metadata": "true"},
        )
        assert status == 200, body
        return AccessToken(body["access_token"], int(body["expires_on"]))


# -- the instance metadata service -------------------------------------------------------


class Imds:
    """169.254.169.254 for every VM: answers by the asking VM's address."""

    def __init__(self, banks: list[BankCloud]) -> None:
        self.vms = {vm.ip: (bank, vm) for bank in banks for vm in bank.vms}
        self.server: ThreadingHTTPServer | None = None

    def answer(self, client: str, path: str, headers: Any) -> tuple[int, bytes, str]:
        found = self.vms.get(client)
        if found is None:
            return 404, b"not a VM", "text/plain"
        bank, vm = found
        url = urlsplit(path)
        if url.path == IMDS_PATH:
            assert bank.kv is not None
            status, _, body = bank.kv.handle_token(path, headers)
            return status, json.dumps(body).encode(), "application/json"
        if headers.get("Metadata", "").lower() != "true":
            return 400, b'{"error": "Bad request"}', "application/json"
        if url.path.endswith("/ipv4/ipAddress/0/privateIpAddress"):
            return 200, vm.ip.encode(), "text/plain"
        if url.path.endswith("/compute/osProfile/computerName"):
            return 200, vm.name.encode(), "text/plain"
        return 404, b"not served here", "text/plain"

    @contextmanager
    def running(self) -> Iterator[Imds]:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                status, body, kind = imds.answer(self.client_address[0], self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("169.254.169.254", 80), Handler)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


# -- the internal load balancers ---------------------------------------------------------


def haproxy_config(banks: list[BankCloud], ports: dict[str, int]) -> str:
    """Each bank's internal load balancer as the template defines its rules: JSON-RPC to
    nodes whose /health answers 200, the data endpoint and the monitor to any that listen."""
    lines = [
        "global", "  maxconn 512",
        "defaults", "  mode tcp", "  timeout connect 2s", "  timeout client 120s",
        "  timeout server 120s",
    ]  # fmt: skip
    for bank in banks:
        for rule, port in (("rpc", ports["rpc"]), ("data", ports["data"]),
                           ("monitor", ports["monitor"])):  # fmt: skip
            name = f"{bank.member}-{rule}"
            lines += [f"frontend {name}", f"  bind {bank.frontend_ip}:{port}",
                      f"  default_backend {name}", f"backend {name}"]  # fmt: skip
            if rule == "rpc":
                lines.append("  option httpchk GET /health")
                check = f"check port {ports['health']} inter 1s fall 2 rise 1"
            else:
                check = "check inter 1s fall 2 rise 1"
            lines += [f"  server {vm.name} {vm.ip}:{port} {check}" for vm in bank.vms]
    return "\n".join(lines) + "\n"


@contextmanager
def load_balancers(config: str, workdir: Path) -> Iterator[None]:
    path = workdir / "haproxy.cfg"
    path.write_text(config)
    log = (workdir / "haproxy.log").open("ab")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=log, stderr=log,
                            start_new_session=True)  # fmt: skip
    try:
        yield
    finally:
        proc.send_signal(signal.SIGUSR1)  # soft stop
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
