"""The artifacts a bank uploads before its VMs boot, made offline: poactl's wheel, and a
wheelhouse of every dependency (what `--wheelhouse` installs from on VMs without PyPI).

No network: the wheel is zipped from the source tree (what setuptools would put in it),
and each dependency's wheel is repacked from its installed copy in this virtualenv
(files from its RECORD, its own WHEEL tags), so the VMs' `pip install --no-index` gets
the same versions the tests run with.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(path: Path, files: dict[str, bytes], dist_info: str) -> None:
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist_info}/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")


def poactl_wheel(repo: Path, out: Path) -> Path:
    """poactl's wheel from the source tree (pure Python; its entry point and data)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for package in ("orchestrator", "genesis"):
        for path in sorted((repo / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[path.relative_to(repo).as_posix()] = path.read_bytes()
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {d}" for d in project["dependencies"]),
    ]
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: poactl-rehearsal\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    scripts = "".join(f"{k} = {v}\n" for k, v in project["scripts"].items())
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    wheel = out / f"{name}-{version}-py3-none-any.whl"
    out.mkdir(parents=True, exist_ok=True)
    _write_wheel(wheel, files, dist_info)
    return wheel


def _closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions `requirements` need, transitively (markers applied)."""
    environment = {**default_environment(), "extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(requirement.name)
        seen[key] = dist
        todo += [Requirement(r) for r in dist.requires or []]
    return list(seen.values())


def _repack(dist: metadata.Distribution, out: Path) -> Path:
    files: dict[str, bytes] = {}
    dist_info = ""
    for entry in dist.files or []:
        name = entry.as_posix()
        if name.startswith("..") or "__pycache__" in name or name.endswith((".pyc", "RECORD")):
            continue  # scripts (pip writes them again), caches, the old record
        if ".dist-info/" in name:
            dist_info = name.split("/", 1)[0]
            if name.endswith(("INSTALLER", "REQUESTED", "direct_url.json")):
                continue
        files[name] = Path(str(dist.locate_file(entry))).read_bytes()
    wheel_meta = files[f"{dist_info}/WHEEL"].decode()
    tag = re.search(r"^Tag: (\S+)$", wheel_meta, re.MULTILINE)
    assert tag, f"{dist_info}: no wheel tag"
    path = out / f"{dist_info.removesuffix('.dist-info')}-{tag.group(1)}.whl"
    _write_wheel(path, files, dist_info)
    return path


def wheelhouse_tar(repo: Path, out: Path) -> Path:
    """A tar of wheels for every runtime dependency of poactl (as installed here)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    folder = out / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = [_repack(dist, folder) for dist in _closure(project["dependencies"])]
    tar_path = out / "wheelhouse.tar"
    with tarfile.open(tar_path, "w") as tar:
        for wheel in wheels:
            tar.add(wheel, arcname=wheel.name)
    return tar_path


def tar_bytes(path: Path) -> bytes:
    return io.BytesIO(path.read_bytes()).getvalue()
