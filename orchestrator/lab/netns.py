"""Linux network namespaces: made, wired, entered and removed with iproute2 and iptables.

The lab puts every node in a namespace of its own (`lab.topology`). This module is the
only place that talks to the kernel's networking: `ip` and `iptables` commands, and
`inside(ns)`, which moves the *calling thread* into a namespace (setns(2) acts per
thread): sockets made there stay in that namespace, and a process started there lives in
it. Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); `unavailable()` says
why it cannot run instead of failing half-way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator.errors import LabError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 20.0
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can): not root, or a tool missing."""
    if os.geteuid() != 0:
        return "the lab needs root (CAP_NET_ADMIN to make network namespaces, veths and rules)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"`{tool}` is not installed (scripts/setup.sh installs iptables)"
    probe = f"poactl-probe-{os.getpid()}"
    try:
        run(["ip", "netns", "add", probe])
        run(["iptables", "-S"], ns=probe)
    except LabError as e:
        return f"cannot make a network namespace here: {e.what}"
    finally:
        with contextlib.suppress(LabError):
            run(["ip", "netns", "del", probe])
    return None


def run(argv: Sequence[str], *, ns: str | None = None, check: bool = True) -> str:
    """Run a networking command (inside `ns` if given); its output. LabError if it fails."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    try:
        done = subprocess.run(
            full, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"`{' '.join(full)}` did not run: {e}", obj=ns) from e
    if check and done.returncode != 0:
        raise LabError(
            f"`{' '.join(full)}` failed: {done.stderr.strip() or done.returncode}",
            obj=ns,
            hint="the lab needs root with CAP_NET_ADMIN; `poactl lab down` removes a half-made lab",
        )
    return done.stdout


def names() -> list[str]:
    """Every named network namespace on this machine."""
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def add(ns: str) -> None:
    """A new namespace with its loopback up."""
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "set", "lo", "up"], ns=ns)


def pids(ns: str) -> list[int]:
    """The processes running in `ns`."""
    return [int(p) for p in run(["ip", "netns", "pids", ns], check=False).split()]


def delete(ns: str, *, grace: float = 10.0) -> None:
    """Stop every process in `ns` (TERM, then KILL after `grace`), then remove it; its
    interfaces go with it (a veth's other end too)."""
    if ns not in names():
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        found = pids(ns)
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen process cannot act on TERM
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while found and pids(ns) and time.monotonic() < deadline:
            time.sleep(0.1)
    run(["ip", "netns", "del", ns], check=False)


def veth(a_ns: str, a_name: str, b_ns: str, b_name: str) -> None:
    """A veth pair made directly inside its two namespaces (never in the host's)."""
    run(["ip", "link", "add", a_name, "netns", a_ns, "type", "veth",
         "peer", "name", b_name, "netns", b_ns])  # fmt: skip


def address(ns: str, dev: str, cidr: str) -> None:
    run(["ip", "addr", "add", cidr, "dev", dev], ns=ns)
    run(["ip", "link", "set", dev, "up"], ns=ns)


def bridge(ns: str, name: str, cidr: str) -> None:
    run(["ip", "link", "add", name, "type", "bridge"], ns=ns)
    address(ns, name, cidr)


def attach(ns: str, dev: str, bridge_name: str) -> None:
    run(["ip", "link", "set", dev, "master", bridge_name, "up"], ns=ns)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Move the calling thread into `ns` for the block, then back. Sockets opened inside
    belong to `ns` for good; a process started inside lives in it."""
    target = os.open(NETNS_DIR / ns, os.O_RDONLY)
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        _setns(target, ns)
        try:
            yield
        finally:
            _setns(home, "the caller's namespace")
    finally:
        os.close(target)
        os.close(home)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise LabError(f"cannot enter the network namespace: {os.strerror(errno)}", obj=what)
