"""One bank's load balancer (`poactl balancer`): HAProxy and poactl's JSON-RPC filter,
run and stopped together.

The process writes `haproxy.cfg` and the token map into its state dir, starts Debian's
HAProxy as its child in master-worker mode, and serves the filter (`filter`). Both files
are made in `next/` first and checked there by `haproxy -c` (the configuration names the
map relative to itself, `default-path config`, so what is checked is exactly what will
run); only a pair HAProxy accepts is renamed into place, so a refused one leaves the
running configuration as it was. SIGHUP makes a new pair and reloads HAProxy (SIGUSR2
to its master: new workers take the listening sockets over, old ones finish their
connections, no request is dropped);
SIGTERM stops both (requests under way get `STOP_GRACE` to finish). `in_rotation` asks
HAProxy's stats socket which nodes take traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from orchestrator.balancer.filter import Filter
from orchestrator.balancer.haproxy import BalancerSpec, PoolNode, haproxy_config
from orchestrator.balancer.settings import BalancerFile
from orchestrator.balancer.tokens import token_map
from orchestrator.errors import NodeError, PoaError, ToolError
from orchestrator.geth.proc import stop_pid
from orchestrator.logs import log_tail

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
STOP_GRACE = 3.0  # seconds for requests under way when the balancer stops
HAPROXY_STOP = ((signal.SIGUSR1, STOP_GRACE), (signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0))


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        raise ToolError(
            "HAProxy is not installed",
            obj="haproxy",
            hint="run scripts/setup.sh (it installs Debian's haproxy), or apt-get install haproxy",
        )
    return found


TOKENS_MAP = "tokens.map"  # beside haproxy.cfg, which names it relative to itself


class Paths:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir
        self.config = state_dir / "haproxy.cfg"
        self.tokens_map = state_dir / TOKENS_MAP
        self.socket = state_dir / "haproxy.sock"
        self.log = state_dir / "haproxy.log"
        self.next = state_dir / "next"  # a new pair, checked before it replaces these

    @property
    def stats(self) -> Path:
        return Path(f"{self.socket}.stats")


def spec_of(settings: BalancerFile, paths: Paths) -> BalancerSpec:
    return BalancerSpec(
        member=settings.member,
        host=settings.host,
        port=settings.port,
        filter_port=settings.filter_port,
        pool_port=settings.pool_port,
        nodes=[
            PoolNode(n.name, n.host, n.http_port, n.health_port, n.p2p_port, n.peer_port)
            for n in settings.nodes
        ],
        tokens_map=Path(TOKENS_MAP),
        master_socket=paths.socket,
        max_body_bytes=settings.max_body_kb * 1024,
        node_timeout=settings.node_timeout_seconds,
    )


def write_files(settings: BalancerFile, paths: Paths) -> None:
    """Make the configuration and the tokens map, check them, then put them in place;
    NodeError (and the files in place untouched) when HAProxy refuses them."""
    shutil.rmtree(paths.next, ignore_errors=True)  # what a crash left half-made
    paths.next.mkdir(parents=True, mode=0o700)
    try:
        config, tokens = paths.next / paths.config.name, paths.next / TOKENS_MAP
        _write_private(tokens, token_map(settings.tokens_dir).encode())
        _write_private(config, haproxy_config(spec_of(settings, paths)).encode())
        check_config(config, shown=paths.config)
        os.replace(tokens, paths.tokens_map)  # the map first: the running file names it
        os.replace(config, paths.config)
    finally:
        shutil.rmtree(paths.next, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    """A new file, mode 0600. Not synced to disk: it is renamed into place only after the
    check, and `poactl balancer` writes both files again whenever it starts."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def check_config(config: Path, *, shown: Path | None = None) -> None:
    """`haproxy -c` on `config` (named `shown` in the error: where it would have gone)."""
    out = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        alerts = [line for line in (out.stdout + out.stderr).splitlines() if "ALERT" in line]
        raise NodeError(
            "HAProxy refuses the generated configuration: " + " | ".join(alerts)[-400:],
            obj=str(shown or config),
            hint="a node's host may not resolve or a path be unreadable; see the message "
            "(the running configuration is unchanged)",
        )


def in_rotation(stats_socket: Path) -> dict[str, bool] | None:
    """Node -> whether HAProxy sends it traffic now; None when HAProxy cannot be asked."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(stats_socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {
        r["svname"]: r["status"].startswith("UP")
        for r in rows
        if r.get("pxname") == "nodes" and r.get("svname") not in ("FRONTEND", "BACKEND")
    }


class Balancer:
    def __init__(self, settings: BalancerFile) -> None:
        self.settings = settings
        self.paths = Paths(settings.state_dir)
        self.filter = Filter(
            "127.0.0.1", settings.filter_port, f"http://127.0.0.1:{settings.pool_port}"
        )
        self._haproxy: subprocess.Popen[bytes] | None = None
        self._reloading = threading.Lock()  # one reload at a time, in the order asked

    def _start_haproxy(self) -> None:
        write_files(self.settings, self.paths)
        argv = [haproxy_binary(), "-W", "-db", "-f", str(self.paths.config)]
        with self.paths.log.open("ab") as out:
            self._haproxy = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(self.settings.host, self.settings.port):
            if self._haproxy.poll() is not None or time.monotonic() > deadline:
                raise NodeError(
                    "HAProxy did not start: " + " | ".join(log_tail(self.paths.log, 3)),
                    obj=str(self.paths.config),
                    hint=f"read {self.paths.log}",
                )
            time.sleep(0.1)

    def reload(self) -> None:
        """New configuration and tokens, without dropping a connection; a pair HAProxy
        refuses leaves the running one in place (NodeError)."""
        write_files(self.settings, self.paths)
        if self._haproxy is not None and self._haproxy.poll() is None:
            self._haproxy.send_signal(signal.SIGUSR2)
            log.info("reloaded HAProxy of %s", self.settings.member)

    def _on_hup(self) -> None:
        """SIGHUP: reload on a worker thread, so the filter (on this loop) keeps serving
        while `haproxy -c` runs."""
        asyncio.get_running_loop().run_in_executor(None, self._reload_logged)

    def _reload_logged(self) -> None:
        with self._reloading:
            try:
                self.reload()
            except PoaError as e:
                log.error("not reloaded; HAProxy keeps its running configuration: %s", e)

    def run(self) -> int:
        return asyncio.run(self._main())

    async def _main(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        await self.filter.start()
        try:
            self._start_haproxy()
            log.info("balancer of %s serving %s", self.settings.member, self.settings.url)
            while not stop.is_set():
                if self._haproxy is not None and self._haproxy.poll() is not None:
                    log.error("HAProxy exited with %s", self._haproxy.returncode)
                    return 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
            return 0
        finally:
            if self._haproxy is not None and self._haproxy.poll() is None:
                # Soft stop so requests under way finish, then a hard stop: idle keep-alive
                # connections (kept open across reloads, see `haproxy`) would hold a soft
                # stop until their clients leave or the keep-alive timeout ends them.
                stop_pid(self._haproxy.pid, HAPROXY_STOP)
            await self.filter.stop()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
