"""The Docker API and the geth image the Docker runtime runs through it.

`connect` opens a client on a Docker API (Docker Engine, or Podman's Docker-compatible
service) and raises `ServiceUnavailable` naming `DOCKER_HOST` when nothing answers.
`check_image` runs `geth version` in a throwaway container and refuses an image that is
missing or not geth 1.13.15 (`ToolError`). Every image poactl runs keeps geth where the
official `ethereum/client-go` image keeps it (`/usr/local/bin/geth`); where no registry is
reachable, `scripts/build_geth_image.sh` builds `LOCAL_IMAGE` FROM scratch that way.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import docker  # type: ignore[import-untyped,unused-ignore]
import requests
from docker.errors import DockerException, ImageNotFound  # type: ignore[import-untyped,unused-ignore]

from orchestrator.errors import ServiceUnavailable, ToolError
from orchestrator.geth.command import GETH_VERSION

log = logging.getLogger(__name__)

DEFAULT_IMAGE = f"ethereum/client-go:v{GETH_VERSION}"  # production default (a registry)
LOCAL_IMAGE = f"localhost/poactl/geth:v{GETH_VERSION}"  # scripts/build_geth_image.sh
GETH_IN_IMAGE = "/usr/local/bin/geth"  # where ethereum/client-go keeps it
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
LABEL_PREFIX = "io.poactl."

IMAGE_HINT = (
    "build it with scripts/build_geth_image.sh (no registry needed), or pull "
    f"{DEFAULT_IMAGE} (or your registry's copy) with `docker pull`"
)

# What a Docker API that does not answer (or stops answering) raises through the SDK.
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


def docker_host(base_url: str | None) -> str:
    """The API address: `base_url`, else `DOCKER_HOST`, else Docker's default socket."""
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def unavailable(base_url: str, e: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the Docker API does not answer ({type(e).__name__}: {e})",
        obj=f"DOCKER_HOST={base_url}",
        hint="start Docker (on a machine without it: scripts/setup_podman.sh starts "
        "Podman's Docker API) and point DOCKER_HOST at its socket",
    )


def connect(base_url: str | None = None, *, timeout: int = 30) -> docker.DockerClient:
    """A client on the Docker API at `base_url` (default: `DOCKER_HOST`), checked with a ping.

    Raises `ServiceUnavailable` (transient: the daemon may be starting) naming the address
    when nothing answers there.
    """
    url = docker_host(base_url)
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        client.ping()
    except (DockerException, *UNREACHABLE) as e:
        raise unavailable(url, e) from e
    return client


def api_url(client: docker.DockerClient) -> str:
    return str(client.api.base_url)


@contextmanager
def unreachable_is_unavailable(client: docker.DockerClient) -> Iterator[None]:
    """Turn a connection failure in the block into `ServiceUnavailable` naming the API."""
    try:
        yield
    except UNREACHABLE as e:
        raise unavailable(api_url(client), e) from e


def parse_geth_version(text: str) -> str | None:
    """The version in `geth version` output (`Version: 1.13.15-stable`), or None."""
    found = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
    return found.group(1) if found else None


def ensure_image(client: docker.DockerClient, image: str, *, pull: bool = False) -> None:
    """The image is there (pulled first when `pull` and it is missing), else `ToolError`."""
    with unreachable_is_unavailable(client):
        try:
            client.images.get(image)
            return
        except ImageNotFound as e:
            if not pull:
                raise ToolError("geth image not found", obj=image, hint=IMAGE_HINT) from e
        log.info("pulling %s", image)
        try:
            client.images.pull(image)
        except DockerException as e:
            raise ToolError(f"cannot pull the geth image: {e}", obj=image, hint=IMAGE_HINT) from e


def check_image(
    client: docker.DockerClient,
    image: str,
    *,
    geth_path: str = GETH_IN_IMAGE,
    pull: bool = False,
    timeout: float = 60.0,
) -> str:
    """Run `geth version` in a throwaway container of `image`; the version it prints.

    Raises `ToolError` when the image is missing (after a pull, if `pull`), when geth does
    not run in it, or when it is not geth 1.13.15; `ServiceUnavailable` when the API does
    not answer. The throwaway container is removed whatever happens.
    """
    ensure_image(client, image, pull=pull)
    with unreachable_is_unavailable(client):
        try:
            container = client.containers.create(
                image,
                ["version"],
                entrypoint=[geth_path],
                network_mode="host",
                labels={f"{LABEL_PREFIX}role": "version-check"},
            )
        except DockerException as e:
            raise ToolError(
                f"cannot create a container to run `geth version`: {e}", obj=image, hint=IMAGE_HINT
            ) from e
        try:
            try:
                container.start()
                code = int(container.wait(timeout=timeout)["StatusCode"])
                out = container.logs().decode(errors="replace")
            except DockerException as e:
                raise ToolError(
                    f"`{geth_path} version` does not run in the image: {e}",
                    obj=image,
                    hint=f"the image must hold geth at {geth_path}; {IMAGE_HINT}",
                ) from e
        finally:
            try:
                container.remove(force=True)
            except DockerException:
                log.warning("could not remove the version-check container %s", container.id)
    version = parse_geth_version(out)
    if code != 0 or version is None:
        tail = " | ".join(out.strip().splitlines()[-3:]) or "no output"
        raise ToolError(
            f"`geth version` failed in the image (exit {code}): {tail}",
            obj=image,
            hint=IMAGE_HINT,
        )
    if not version.startswith(GETH_VERSION):
        raise ToolError(
            f"the image runs geth {version}; poactl needs {GETH_VERSION} "
            "(the last release that seals Clique blocks)",
            obj=image,
            hint=f"use {DEFAULT_IMAGE} or {LOCAL_IMAGE} (scripts/build_geth_image.sh)",
        )
    return version
