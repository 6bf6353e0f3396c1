"""One rehearsal VM: what Azure and the image would do with the scale set's custom data.

Run with the machine's own python3 (standard library only, like boot.py), as root, in
the VM's network namespace (`ip netns exec`, which also gives it its own mount
namespace). It:

1. gives the VM its own /etc, /opt and /var/lib: overlays on the machine's, so what
   install_agent.sh writes there (agent.yaml, the units, the venv, the service user)
   stays in the VM's directory;
2. adds what a VM in Azure has and this machine has not: the Azure names of the bank's
   vault and storage account (/etc/hosts, pointing at the emulators) and the rehearsal's
   CA in the trust store;
3. does what cloud-init does with the custom data: `write_files`, then `runcmd` as one
   shell script (cloud-init's own form: a failing line does not stop the next);
4. starts every poactl unit install_agent.sh enabled, as systemd would: its ExecStart,
   as its User and Group, with its Environment and WorkingDirectory;
5. on SIGTERM stops them (TERM, then KILL after 40 s) and exits.

The plan (a JSON file) holds the decoded custom data and the VM's directory.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

UNITS = Path("/etc/systemd/system")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(message: str) -> None:
    print(f"[vm] {message}", flush=True)


def overlay(root: Path, target: str) -> None:
    name = target.strip("/").replace("/", "-")
    upper, work = root / "upper" / name, root / "work" / name
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={target},upperdir={upper},workdir={work}", target],
        check=True,
    )  # fmt: skip


def cloud_init(plan: dict[str, Any], root: Path) -> int:
    for item in plan["write_files"]:
        path = Path(item["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(item["content_b64"]))
        path.chmod(int(item.get("permissions", "0644"), 8))
    script = root / "runcmd.sh"
    lines = [c if isinstance(c, str) else shlex.join(c) for c in plan["runcmd"]]
    script.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    with (root / "cloud-init-output.log").open("ab") as out:
        return subprocess.run(["/bin/sh", str(script)], stdout=out, stderr=out,
                              env=plan["env"], check=False).returncode  # fmt: skip


def unit(path: Path) -> dict[str, Any]:
    """The [Service] keys the rehearsal honours."""
    found: dict[str, Any] = {"Environment": {}}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, val = value.partition("=")
            found["Environment"][name] = val
        elif key in ("ExecStart", "User", "Group", "WorkingDirectory"):
            found[key] = value
    return found


def start_units(plan: dict[str, Any], root: Path) -> list[subprocess.Popen[bytes]]:
    started = []
    for path in sorted(UNITS.glob("poactl-*.service")):
        spec = unit(path)
        env = {**plan["env"], **spec["Environment"]}
        argv = shlex.split(spec["ExecStart"])
        if spec.get("User"):
            user, group = spec["User"], spec.get("Group", spec["User"])
            argv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--", *argv]
        out = (root / f"{path.stem}.log").open("ab")
        log(f"starting {path.name}: {spec['ExecStart']}")
        started.append(
            subprocess.Popen(
                argv, stdout=out, stderr=out, env=env, cwd=spec.get("WorkingDirectory", "/")
            )
        )
    return started


def main(plan_file: str) -> int:
    plan = json.loads(Path(plan_file).read_text())
    root = Path(plan["root"])
    for target in ("/etc", "/opt", "/var/lib"):
        overlay(root, target)
    with open("/etc/hosts", "a") as hosts:
        hosts.write("".join(f"{ip} {name}\n" for name, ip in plan["hosts"].items()))
    with open("/etc/ssl/certs/ca-certificates.crt", "a") as bundle:
        bundle.write(plan["ca"])
    code = cloud_init(plan, root)
    log(f"runcmd exited {code}")
    units = start_units(plan, root)
    if not units:
        log("no poactl unit was installed")
        return 1
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    reported: set[int] = set()
    while not stop:
        for proc in units:
            if proc.poll() is not None and proc.pid not in reported:
                reported.add(proc.pid)
                log(f"{proc.args} exited {proc.returncode}")
        time.sleep(0.5)
    for proc in units:
        proc.terminate()
    deadline = time.monotonic() + 40
    for proc in units:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1]))
