"""Run geth in a container through the Docker API (Docker Engine or Podman's Docker API).

`DockerRuntime.start` takes the same geth argv as the process runtime: argv[0] (a host
path to geth) is replaced by the geth inside the image, and the node's directories are
bind-mounted at the same paths inside the container, so every path in argv stays valid
and the agent still talks to geth over the IPC socket from the host. Containers run as
the calling user's uid:gid on the host network, are named `poactl-<node>`, carry
`io.poactl.*` labels (`remove_labelled` finds exactly those), and have no Docker restart
policy: the agent restarts nodes, so its leases stay the single source of truth. geth's
output is appended to the node's log file by a thread that follows the container's logs,
so `poactl logs` reads the same file for both runtimes.

Errors: an API that does not answer is `ServiceUnavailable` naming `DOCKER_HOST`; a
missing image is `ToolError`; a container that cannot be created or started is
`NodeError`, and nothing is left half-started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped,unused-ignore]
import requests
from docker.errors import (  # type: ignore[import-untyped,unused-ignore]
    APIError,
    DockerException,
    ImageNotFound,
    NotFound,
)
from docker.models.containers import Container  # type: ignore[import-untyped,unused-ignore]

from orchestrator.errors import ConfigError, NodeError, ToolError
from orchestrator.geth.proc import STOP_SEQUENCE
from orchestrator.runtime.image import (
    DEFAULT_IMAGE,
    GETH_IN_IMAGE,
    IMAGE_HINT,
    LABEL_PREFIX,
    UNREACHABLE,
    connect,
    unavailable,
    unreachable_is_unavailable,
)

log = logging.getLogger(__name__)

NAME_PREFIX = "poactl-"
NODE_LABEL = f"{LABEL_PREFIX}node"
GONE = -1  # poll()/stop() of a container that was removed behind our back
# geth flags whose value is a host path: bind-mounted (the directory, or a file's directory).
DIR_FLAGS = frozenset({"--datadir", "--keystore"})
FILE_FLAGS = frozenset({"--config", "--ipcpath", "--password", "--log.file", "--signer"})
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_LOG_JOIN_SECONDS = 5.0
# Log followers of the containers this process started, by container id: joined before a
# container is removed (by `stop` or `remove_labelled`), so geth's last lines reach its file.
_followers: dict[str, threading.Thread] = {}
_followers_lock = threading.Lock()


def poactl_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` with every key under `io.poactl.` (`consortium` -> `io.poactl.consortium`)."""
    out = {}
    for key, value in labels.items():
        full = key if key.startswith(LABEL_PREFIX) else LABEL_PREFIX + key
        if full == LABEL_PREFIX or not isinstance(value, str):
            raise ConfigError("not a valid container label", obj=f"{key}={value!r}")
        out[full] = value
    return out


def mount_dirs(argv: Sequence[str], extra: Iterable[Path] = ()) -> list[Path]:
    """The host directories argv's paths live in, plus `extra`: absolute, outermost only."""
    found = [Path(p) for p in extra]
    args = list(argv)
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
        if flag in DIR_FLAGS and value:
            found.append(Path(value))
        elif flag in FILE_FLAGS and value:
            found.append(Path(value).parent)
    dirs = sorted({Path(os.path.abspath(d)) for d in found})
    return [d for d in dirs if not any(p != d and d.is_relative_to(p) for p in dirs)]


class ContainerNode:
    """A started geth container (`NodeProcess`)."""

    def __init__(self, client: docker.DockerClient, container: Container, name: str) -> None:
        self._client = client
        self._container = container
        self._name = name
        self._exit_code: int | None = None
        self._pid = int(container.attrs.get("State", {}).get("Pid") or 0)

    @property
    def pid(self) -> int:
        """geth's pid on the host (from the container's inspect at start; 0 if it had
        already exited by then)."""
        return self._pid

    @property
    def container_name(self) -> str:
        return str(self._container.name)

    def poll(self) -> int | None:
        """The exit code once the container has exited (or was removed: -1), else None.
        Raises `ServiceUnavailable` when the Docker API does not answer."""
        if self._exit_code is not None:
            return self._exit_code
        with unreachable_is_unavailable(self._client):
            try:
                self._container.reload()
            except APIError as e:
                if not is_gone(e):
                    raise
                self._exit_code = GONE
                return self._exit_code
        state: dict[str, Any] = self._container.attrs.get("State", {})
        if state.get("Running") or state.get("Status") in ("created", "running", "paused"):
            return None
        self._exit_code = int(state.get("ExitCode", GONE))
        return self._exit_code

    def kill(self) -> None:
        """SIGKILL geth now, without waiting (fencing a node that does not answer); `stop`
        still removes the container."""
        if self._exit_code is not None:
            return
        with unreachable_is_unavailable(self._client), contextlib.suppress(APIError):
            self._container.kill(signal="SIGKILL")

    def stop(self) -> int:
        """SIGINT, then TERM, then KILL, each with geth's bounded wait; then its log follower
        is joined and the container removed. The exit code (stopping again returns it)."""
        with unreachable_is_unavailable(self._client):
            for sig, wait in STOP_SEQUENCE:
                if self.poll() is not None:
                    break
                log.info("stopping %s (%s) with %s", self._name, self.container_name, sig.name)
                try:
                    self._container.kill(signal=sig.name)
                except APIError as e:  # exited meanwhile (409) or already gone (404)
                    log.debug("kill %s: %s", self.container_name, e)
                with contextlib.suppress(*UNREACHABLE, APIError):
                    self._container.wait(timeout=wait)
            code = self.poll()
            _remove(self._container)
        return GONE if code is None else code


class DockerRuntime:
    """Starts nodes as containers of `image` through the Docker API (`Runtime`).

    `client` is a docker SDK client or an API address (`unix:///var/run/docker.sock`).
    `labels` are put on every container under `io.poactl.` (e.g. `consortium`, `member`);
    `io.poactl.node` is set per node. `binds` are extra host directories mounted at the same
    path. `user` defaults to this process's uid:gid.
    """

    def __init__(
        self,
        client: docker.DockerClient | str,
        *,
        image: str = DEFAULT_IMAGE,
        labels: Mapping[str, str] | None = None,
        binds: Sequence[Path] = (),
        geth_path: str = GETH_IN_IMAGE,
        name_prefix: str = NAME_PREFIX,
        user: str | None = None,
    ) -> None:
        self._client = connect(client) if isinstance(client, str) else client
        self.image = image
        self.labels = poactl_labels(labels or {})
        if NODE_LABEL in self.labels:
            raise ConfigError("the node label is set per node", obj=NODE_LABEL)
        self._binds = tuple(Path(b) for b in binds)
        self._geth_path = geth_path
        self._name_prefix = name_prefix
        self._user = user or f"{os.getuid()}:{os.getgid()}"

    def container_name(self, name: str) -> str:
        full = self._name_prefix + name
        if not _CONTAINER_NAME.match(full):
            raise ConfigError(
                "not usable as a container name",
                obj=full,
                hint="node names are letters, digits, '-', '_' and '.'",
            )
        return full

    def start(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> ContainerNode:
        cname = self.container_name(name)
        labels = {**self.labels, NODE_LABEL: name}
        dirs = mount_dirs(argv, self._binds)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        for d in dirs:  # podman refuses a missing bind source; Docker would create it as root
            d.mkdir(parents=True, exist_ok=True)
        with unreachable_is_unavailable(self._client):
            self._remove_stale(cname, labels)
            try:
                container = self._client.containers.create(
                    self.image,
                    list(argv[1:]),
                    entrypoint=[self._geth_path],
                    name=cname,
                    labels=labels,
                    user=self._user,
                    network_mode="host",
                    volumes={str(d): {"bind": str(d), "mode": "rw"} for d in dirs},
                    environment=dict(env or {}),
                    stdin_open=False,
                    tty=False,
                )
            except ImageNotFound as e:
                raise ToolError("geth image not found", obj=self.image, hint=IMAGE_HINT) from e
            except DockerException as e:
                raise NodeError(
                    f"cannot create the geth container: {e}",
                    obj=name,
                    hint=f"check the image {self.image} and the Docker API's log",
                ) from e
            try:
                container.start()
                container.reload()
            except BaseException as e:
                with contextlib.suppress(DockerException, *UNREACHABLE):
                    container.remove(force=True)
                if isinstance(e, UNREACHABLE):
                    raise unavailable(str(self._client.api.base_url), e) from e
                if isinstance(e, DockerException):
                    raise NodeError(
                        f"cannot start the geth container: {e}",
                        obj=name,
                        hint=f"check that the image holds geth at {self._geth_path}",
                    ) from e
                raise
        thread = threading.Thread(
            target=_follow_logs, args=(container, log_file), name=f"logs-{cname}", daemon=True
        )
        with _followers_lock:
            _followers[str(container.id)] = thread
        thread.start()
        log.info("started %s as container %s (%s)", name, cname, self.image)
        return ContainerNode(self._client, container, name)

    def run_once(
        self, argv: Sequence[str], *, name: str, timeout: float = 120.0
    ) -> tuple[int, str]:
        """Run a one-shot geth command (say `geth --datadir D init genesis.json`) in a
        throwaway container with the same image, user and same-path mounts as `start`, for
        VMs that have no geth binary of their own; its exit code and output. The container
        is removed whatever happens."""
        files = [Path(a).parent for a in argv[1:] if a.startswith("/") and Path(a).is_file()]
        dirs = mount_dirs(argv, [*self._binds, *files])  # files: e.g. init's genesis.json
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        with unreachable_is_unavailable(self._client):
            try:
                container = self._client.containers.create(
                    self.image,
                    list(argv[1:]),
                    entrypoint=[self._geth_path],
                    labels={**self.labels, NODE_LABEL: name, f"{LABEL_PREFIX}role": "one-shot"},
                    user=self._user,
                    network_mode="host",
                    volumes={str(d): {"bind": str(d), "mode": "rw"} for d in dirs},
                )
            except ImageNotFound as e:
                raise ToolError("geth image not found", obj=self.image, hint=IMAGE_HINT) from e
            except DockerException as e:
                raise NodeError(f"cannot create a geth container: {e}", obj=name) from e
            try:
                container.start()
                code = int(container.wait(timeout=timeout)["StatusCode"])
                out = container.logs().decode(errors="replace")
            except DockerException as e:
                raise NodeError(f"cannot run geth in a container: {e}", obj=name) from e
            except requests.exceptions.ReadTimeout as e:
                raise NodeError(
                    f"`geth {' '.join(argv[1:3])} ...` did not finish within {timeout:.0f}s",
                    obj=name,
                ) from e
            finally:
                with contextlib.suppress(DockerException, *UNREACHABLE):
                    container.remove(force=True)
        return code, out

    def _remove_stale(self, cname: str, labels: Mapping[str, str]) -> None:
        """Stop and remove a container of this name left by an agent that was killed; refuse
        to touch one that carries other labels (not ours)."""
        try:
            stale = self._client.containers.get(cname)
        except APIError as e:
            if not is_gone(e):
                raise
            return
        theirs = {k: v for k, v in (stale.labels or {}).items() if k.startswith(LABEL_PREFIX)}
        if any(theirs.get(k) != v for k, v in labels.items()):
            raise NodeError(
                "a container of this name exists and is not this node's",
                obj=cname,
                hint=f"its labels are {theirs or 'none'}; remove it (docker rm -f {cname}) "
                "if it is a leftover, or give this consortium other node names",
            )
        log.warning("removing stale container %s (status %s)", cname, stale.status)
        ContainerNode(self._client, stale, labels[NODE_LABEL]).stop()


def is_gone(e: APIError) -> bool:
    """Whether `e` says the container no longer exists: a 404, or Podman's 500 "no such
    container" for one removed while the request was under way."""
    return isinstance(e, NotFound) or "no such container" in str(e.explanation or "").lower()


def _remove(container: Container) -> None:
    """Remove a container (killing it if it still runs), once its log follower in this
    process, if any, has written everything out."""
    with _followers_lock:
        follower = _followers.pop(str(container.id), None)
    if follower is not None:
        follower.join(_LOG_JOIN_SECONDS)
    try:
        container.remove(force=True)
    except APIError as e:
        if not is_gone(e):
            raise


def _follow_logs(container: Container, log_file: Path) -> None:
    """Append the container's output to `log_file` until the container exits."""
    try:
        with log_file.open("ab") as out:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                out.write(chunk)
                out.flush()
    except (DockerException, *UNREACHABLE, OSError) as e:
        log.warning("stopped following the logs of %s: %s", container.name, e)


def remove_labelled(client: docker.DockerClient, labels: Mapping[str, str]) -> list[str]:
    """Stop and remove exactly the containers carrying every one of `labels` (keys under
    `io.poactl.`, e.g. `{"consortium": "bank-net"}`); their names, sorted.

    Running ones get SIGINT and geth's bounded wait first; then they are removed by force.
    """
    want = poactl_labels(labels)
    if not want:
        raise ConfigError(
            "refusing to remove containers by an empty label set",
            hint="name at least one io.poactl.* label, e.g. the consortium",
        )
    with unreachable_is_unavailable(client):
        listed = client.containers.list(
            all=True, filters={"label": [f"{k}={v}" for k, v in want.items()]}
        )
        # Check again here: the filter's semantics differ between API implementations.
        ours = [c for c in listed if all((c.labels or {}).get(k) == v for k, v in want.items())]
        running = [c for c in ours if c.status == "running"]
        for c in running:
            with contextlib.suppress(APIError):
                c.kill(signal="SIGINT")
        for c in running:
            with contextlib.suppress(*UNREACHABLE, APIError):
                c.wait(timeout=STOP_SEQUENCE[0][1])
        for c in ours:
            _remove(c)
            log.info("removed container %s", c.name)
    return sorted(str(c.name) for c in ours)
