#!/usr/bin/env bash
# Build the local geth image where no registry is reachable: FROM scratch with the
# statically built .tools/bin/geth (scripts/setup.sh builds it with CGO_ENABLED=0).
#
#   scripts/build_geth_image.sh [--tag TAG] [--geth PATH]
#
# The layout matches the official ethereum/client-go image (geth at /usr/local/bin/geth,
# ENTRYPOINT ["geth"]), so the Docker runtime runs either with one code path. The image is
# built through the Docker API in DOCKER_HOST (Docker Engine, or Podman's API: when
# DOCKER_HOST is unset, scripts/setup_podman.sh starts it). Idempotent: skipped when TAG
# exists and was built from a binary with the same sha256 (label io.poactl.geth-sha256).
# Prints the tag on the last line.
set -euo pipefail

GETH_VERSION=1.13.15
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag="localhost/poactl/geth:v$GETH_VERSION"
geth="$root/.tools/bin/geth"
say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
    --geth) [ $# -ge 2 ] || die "--geth needs a value"; geth=$2; shift 2 ;;
    *) die "unknown argument '$1' (use --tag TAG, --geth PATH)" ;;
  esac
done

[ -x "$geth" ] || die "no geth at $geth; run scripts/setup.sh first (it builds geth $GETH_VERSION)"
version=$("$geth" version 2>/dev/null | sed -n 's/^Version: //p')
[[ $version == "$GETH_VERSION"* ]] || die "$geth is geth '$version', not $GETH_VERSION"
python="$root/.venv/bin/python"
[ -x "$python" ] || die "no virtualenv at .venv; run scripts/setup.sh first"

if [ -z "${DOCKER_HOST:-}" ]; then
  DOCKER_HOST=$("$root/scripts/setup_podman.sh" | tail -n 1 | sed -n 's/^DOCKER_HOST=//p')
  [ -n "$DOCKER_HOST" ] || die "scripts/setup_podman.sh did not print DOCKER_HOST"
  export DOCKER_HOST
fi

exec "$python" - "$geth" "$tag" "$GETH_VERSION" <<'PY'
"""Build (or keep) the scratch geth image through the Docker API in DOCKER_HOST."""

import hashlib
import io
import os
import sys
import tarfile
import time

import docker
from docker.errors import DockerException, ImageNotFound

geth, tag, version = sys.argv[1:4]


def say(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def is_static(path: str) -> bool:
    """An ELF executable without a PT_INTERP program header needs no dynamic loader."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = [int.from_bytes(table[i : i + 4], "little") for i in range(0, len(table), phentsize)]
    return 3 not in types  # PT_INTERP


if not is_static(geth):
    sys.exit(f"[setup] error: {geth} is dynamically linked; rebuild it with CGO_ENABLED=0")
with open(geth, "rb") as f:
    digest = hashlib.file_digest(f, "sha256").hexdigest()

host = os.environ["DOCKER_HOST"]
try:
    client = docker.DockerClient(base_url=host, timeout=300)
    client.ping()
except DockerException as e:
    sys.exit(f"[setup] error: no Docker API at DOCKER_HOST={host}: {e}")

try:
    if client.images.get(tag).labels.get("io.poactl.geth-sha256") == digest:
        say(f"image {tag} is current (geth sha256 {digest[:12]})")
        print(tag)
        sys.exit(0)
except ImageNotFound:
    pass

dockerfile = f"""FROM scratch
COPY geth /usr/local/bin/geth
ENV PATH=/usr/local/bin
LABEL io.poactl.geth-sha256="{digest}" org.opencontainers.image.version="{version}" \\
      org.opencontainers.image.title="geth {version} (static, FROM scratch, built by poactl)"
EXPOSE 8545 8546 30303 30303/udp
ENTRYPOINT ["geth"]
""".encode()
context = io.BytesIO()
with tarfile.open(fileobj=context, mode="w") as tar:
    info = tarfile.TarInfo("Dockerfile")
    info.size, info.mode = len(dockerfile), 0o644
    tar.addfile(info, io.BytesIO(dockerfile))
    tar.add(geth, arcname="geth", filter=lambda t: setattr(t, "mode", 0o755) or t)
context.seek(0)
say(f"building image {tag} FROM scratch with {geth} (sha256 {digest[:12]})")
started = time.monotonic()
try:
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
except DockerException as e:
    sys.exit(f"[setup] error: building {tag} failed: {e}")
built = client.images.get(tag).labels.get("io.poactl.geth-sha256")
if built != digest:
    sys.exit(f"[setup] error: {tag} carries geth sha256 {built}, expected {digest}")
say(f"built {tag} in {time.monotonic() - started:.1f}s")
print(tag)
PY
