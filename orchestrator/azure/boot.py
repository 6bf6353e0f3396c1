#!/usr/bin/env python3
"""A validator VM's first boot in its bank's Azure deployment (`infra/azure`).

The scale set's cloud-init custom data writes this file, the deployment's settings
(`settings.json`, made by the template from its parameters and its resources) and the
consortium file, then runs `python3 boot.py settings.json` once per VM. It:

1. asks the instance metadata service (IMDS) for this VM's private address and name,
   and, with public peering, for the load balancer port that forwards to its p2p port
   (the address other banks dial, which the VM cannot see from inside);
2. with a join URL, reads which member publishes there (its one member descriptor);
3. downloads `install_agent.sh`, the poactl wheel (and a wheelhouse, if named) from the
   bank's own `artifacts` container with the VM's managed identity (no key, no SAS),
   waiting for them if the operator has not uploaded them yet;
4. runs `install_agent.sh`, which writes `/etc/poactl/agent.yaml` and the systemd units
   and starts them.

It runs on a fresh VM before poactl is installed, so it uses the standard library only
and imports nothing of poactl (`tests/azure/test_boot.py` checks); the template
embeds it byte for byte (`orchestrator.azure.cloudinit`). Nothing secret passes through
it: tokens stay in memory, and the settings hold names and URLs only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

IMDS = "http://169.254.169.254"
IMDS_VERSION = "2021-02-01"
LB_METADATA_VERSION = "2020-10-01"
STORAGE_RESOURCE = "https://storage.azure.com/"
STORAGE_VERSION = "2021-08-06"
BOOT_DIR = Path("/opt/poactl/boot")
DIST_DIR = Path("/opt/poactl/dist")
CONSORTIUM_FILE = BOOT_DIR / "consortium.yaml"
INSTALLER = "install_agent.sh"
ARTIFACT_WAIT_SECONDS = 3600.0  # the operator uploads the artifacts after the deployment
METADATA_WAIT_SECONDS = 900.0  # IMDS load balancer metadata appears some minutes late
NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}[a-z0-9]$")
MEMBER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


class BootError(Exception):
    """The boot cannot go on; the message says what to fix."""


def say(message: str) -> None:
    print(f"[boot] {message}", flush=True)


# -- HTTP ------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # IMDS: no proxy


def http_get(url: str, headers: Mapping[str, str], *, timeout: float = 10.0) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise BootError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - checked
    with _OPENER.open(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def retrying(
    what: str,
    call: Callable[[], bytes],
    *,
    deadline: float,
    retry_on: Callable[[Exception], bool],
) -> bytes:
    """`call()` until it answers, while `retry_on` says the failure may pass, up to
    `deadline` (a `clock` time); one line per minute of waiting."""
    delay, last_said = 1.0, time.monotonic()
    while True:
        try:
            return call()
        except (urllib.error.URLError, OSError) as e:
            if not retry_on(e) or time.monotonic() + delay > deadline:
                raise BootError(f"{what}: {describe(e)}") from e
            if time.monotonic() - last_said >= 60:
                say(f"still waiting for {what} ({describe(e)})")
                last_said = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def describe(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect ({e.reason})"
    return str(e) or type(e).__name__


def transient(e: Exception) -> bool:
    """Worth another try: no answer yet, throttling, a server error."""
    if isinstance(e, urllib.error.HTTPError):
        return e.code in (404, 408, 410, 429) or e.code >= 500
    return True


# -- the instance metadata service ------------------------------------------------------


class Imds:
    """This VM's instance metadata service (IMDS)."""

    def __init__(self, base: str = IMDS, *, wait: float = 120.0) -> None:
        self.base, self.wait = base.rstrip("/"), wait

    def get(self, path: str, query: Mapping[str, str], *, deadline: float | None = None) -> bytes:
        url = f"{self.base}/metadata/{path}?{urllib.parse.urlencode(query)}"
        until = deadline if deadline is not None else time.monotonic() + self.wait
        return retrying(
            f"IMDS {path}",
            lambda: http_get(url, {"Metadata": "true"}),
            deadline=until,
            retry_on=transient,
        )

    def private_ip(self) -> str:
        path = "instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress"
        return self.get(path, {"api-version": IMDS_VERSION, "format": "text"}).decode().strip()

    def computer_name(self) -> str:
        path = "instance/compute/osProfile/computerName"
        return self.get(path, {"api-version": IMDS_VERSION, "format": "text"}).decode().strip()

    def token(self, resource: str, client_id: str) -> str:
        query = {"api-version": "2018-02-01", "resource": resource}
        if client_id:
            query["client_id"] = client_id
        doc = json.loads(self.get("identity/oauth2/token", query))
        return str(doc["access_token"])

    def p2p_mapping(self, private_ip: str, backend_port: int) -> str | None:
        """`address:port` where the load balancer forwards to this VM's `backend_port`,
        or None while IMDS does not show it yet."""
        doc = json.loads(self.get("loadbalancer", {"api-version": LB_METADATA_VERSION}))
        rules = (doc.get("loadbalancer") or {}).get("inboundRules") or []
        for rule in rules:
            if (
                str(rule.get("protocol", "")).lower() == "tcp"
                and int(rule.get("backendPort", 0)) == backend_port
                and rule.get("privateIpAddress") == private_ip
                and ":" not in str(rule.get("frontendIpAddress", ":"))  # IPv4 only
            ):
                return f"{rule['frontendIpAddress']}:{int(rule['frontendPort'])}"
        return None


def advertised_address(imds: Imds, private_ip: str, p2p_port: int, *, deadline: float) -> str:
    """The load balancer's address and port for this VM's p2p port (public peering)."""
    while True:
        found = imds.p2p_mapping(private_ip, p2p_port)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BootError(
                f"the load balancer shows no inbound NAT rule for {private_ip}:{p2p_port} in "
                "IMDS; check the deployment's p2p NAT rule and the VM's backend pool"
            )
        time.sleep(5)


# -- the bank's artifacts and the member to join from ------------------------------------


def download(url: str, dest: Path, *, token: Callable[[], str], deadline: float) -> None:
    """Fetch a blob with the managed identity's token; wait while it is not uploaded."""

    def fetch() -> bytes:
        headers = {"Authorization": f"Bearer {token()}", "x-ms-version": STORAGE_VERSION}
        return http_get(url, headers, timeout=120)

    data = retrying(f"{url} (upload it to the bank's artifacts container)", fetch,
                    deadline=deadline, retry_on=transient)  # fmt: skip
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.write_bytes(data)
    partial.replace(dest)
    say(f"downloaded {dest.name} ({len(data)} bytes)")


def publisher_at(url: str, *, deadline: float) -> str:
    """The member whose consortium data is at `url`: the one `members/*.json` there. A
    founder that has just booted publishes nothing yet: wait for it until `deadline`."""
    base, _, query = url.partition("?")
    listing = f"{base}?restype=container&comp=list&prefix=members/"
    if query:
        listing += "&" + query
    while True:
        body = retrying(
            f"the consortium data at {base}",
            lambda: http_get(listing, {"x-ms-version": STORAGE_VERSION}),
            deadline=deadline,
            retry_on=transient,
        )
        names = [el.text or "" for el in ET.fromstring(body).iter("Name")]  # noqa: S314 - a bank we join
        members = [n.removeprefix("members/").removesuffix(".json") for n in names]
        if len(members) == 1 and MEMBER_NAME.match(members[0]):
            return members[0]
        if members or time.monotonic() > deadline:
            raise BootError(
                f"{base} publishes {len(members)} member descriptors; give the consortium "
                "data URL of one member (its deployment's output consortiumDataUrl)"
            )
        time.sleep(5)  # the member's leader has not published its descriptor yet


def unpack(tar_path: Path, into: Path) -> None:
    """A wheelhouse tar: plain files only, nothing outside `into` (Debian 12's Python
    3.11.2 predates tarfile's extraction filters, so the check is made here)."""
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        for member in members:
            parts = Path(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                raise BootError(f"{tar_path.name}: {member.name!r} is not a plain file name")
        into.mkdir(parents=True, exist_ok=True)
        for member in members:
            source = tar.extractfile(member)
            assert source is not None
            (into / member.name).parent.mkdir(parents=True, exist_ok=True)
            (into / member.name).write_bytes(source.read())


# -- install_agent.sh --------------------------------------------------------------------


def node_name(member: str, computer: str) -> str:
    """This VM's node name: the member, then its computer name (unique in the bank)."""
    suffix = re.sub(r"[^a-z0-9-]+", "-", computer.lower()).strip("-")
    name = f"{member}-{suffix}"[:42].rstrip("-")
    if not NODE_NAME.match(name):
        raise BootError(f"cannot make a node name from {member!r} and {computer!r}")
    return name


def install_arguments(
    settings: Mapping[str, Any],
    *,
    node: str,
    private_ip: str,
    advertise: str | None,
    joined: str | None,
    wheelhouse: Path | None,
) -> list[str]:
    """The arguments of install_agent.sh for this VM (after the script's path)."""
    ports, containers = settings["ports"], settings["containers"]
    args = [
        "--source", str(DIST_DIR / settings["artifacts"]["wheel"]),
        "--member", settings["member"],
        "--node", node,
        "--host", private_ip,
        "--rpc-host", private_ip,
        "--health-host", "0.0.0.0",  # noqa: S104 - the health extension probes localhost
        "--peer-network", settings["peerNetwork"],
        "--consortium", str(CONSORTIUM_FILE),
        "--vault-url", settings["vaultUrl"],
        "--storage-account-url", settings["blobEndpoint"].rstrip("/"),
        "--container", containers["store"],
        "--publish-container", containers["publish"],
        "--runtime", settings["runtime"],
        "--client-id", settings["clientId"],
        "--p2p-port", str(ports["p2p"]),
        "--http-port", str(ports["http"]),
        "--health-port", str(ports["health"]),
        "--data-port", str(ports["data"]),
        "--monitor-port", str(ports["monitor"]),
    ]  # fmt: skip
    if settings["runtime"] == "docker":
        args += ["--image", settings["image"]]
    if joined is not None:
        args += ["--consortium-data", f"{joined}={settings['joinFrom']}", "--shared-from", joined]
    if advertise is not None:
        args += ["--advertise", advertise]
    if wheelhouse is not None:
        args += ["--wheelhouse", str(wheelhouse)]
    return args


def boot(settings: Mapping[str, Any], *, imds: Imds | None = None) -> int:
    imds = imds or Imds()
    member = settings["member"]
    private_ip, computer = imds.private_ip(), imds.computer_name()
    node = node_name(member, computer)
    say(f"{node}: private address {private_ip}")
    advertise = None
    if settings["peering"] == "public":
        deadline = time.monotonic() + METADATA_WAIT_SECONDS
        advertise = advertised_address(imds, private_ip, settings["ports"]["p2p"],
                                       deadline=deadline)  # fmt: skip
        say(f"other banks reach this node's p2p port at {advertise}")
    joined = None
    if settings["joinFrom"]:
        joined = publisher_at(settings["joinFrom"], deadline=time.monotonic() + 600)
        say(f"joining the network {joined} publishes")
    artifacts = settings["artifacts"]
    base = f"{settings['blobEndpoint'].rstrip('/')}/{settings['containers']['artifacts']}"
    deadline = time.monotonic() + ARTIFACT_WAIT_SECONDS

    def token() -> str:
        return imds.token(STORAGE_RESOURCE, settings["clientId"])

    names = [
        INSTALLER,
        artifacts["wheel"],
        *([artifacts["wheelhouse"]] if artifacts["wheelhouse"] else []),
    ]
    for name in names:
        download(f"{base}/{urllib.parse.quote(name)}", DIST_DIR / name, token=token,
                 deadline=deadline)  # fmt: skip
    wheelhouse = None
    if artifacts["wheelhouse"]:
        wheelhouse = DIST_DIR / "wheels"
        unpack(DIST_DIR / artifacts["wheelhouse"], wheelhouse)
    args = install_arguments(settings, node=node, private_ip=private_ip, advertise=advertise,
                             joined=joined, wheelhouse=wheelhouse)  # fmt: skip
    say("running install_agent.sh " + " ".join(args))
    return subprocess.run(["bash", str(DIST_DIR / INSTALLER), *args], check=False).returncode


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: boot.py SETTINGS_JSON", file=sys.stderr)
        return 2
    try:
        settings = json.loads(Path(argv[1]).read_text())
        return boot(settings)
    except BootError as e:
        print(f"[boot] error: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
