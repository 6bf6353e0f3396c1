"""A bank's published consortium data as a directory: the local form of the container
that, in Azure, other banks read through a read-only SAS URL.

Each blob is a file at its name's path (`members/bank-a.json`), written atomically and
world-readable (0644): the directory is meant to be read by the other banks, through a
path or a `file://` URL. Only the owning bank's processes write here.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from orchestrator.boundaries import Blob
from orchestrator.errors import ConfigError
from orchestrator.statefile import write_bytes_atomic


class DirectoryData:
    """`ConsortiumData` and `Publication` on the directory `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DirectoryData({str(self.root)!r})"

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") for p in parts):
            raise ConfigError(f"{name!r} is not a blob name", obj=str(self.root))
        return self.root.joinpath(*parts)

    def read(self, name: str) -> Blob | None:
        path = self._path(name)
        if not self._inside(path):
            return None
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Blob(name, data, f'"{hashlib.sha256(data).hexdigest()[:16]}"', leased=False)

    def list(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        names = []
        for path in self.root.rglob("*"):
            # Half-written files start with a dot; a link could point anywhere on the reader's
            # machine (another bank's files must not make it publish its own).
            if path.is_file() and not path.name.startswith(".") and self._inside(path):
                name = path.relative_to(self.root).as_posix()
                if name.startswith(prefix):
                    names.append(name)
        return sorted(names)

    def _inside(self, path: Path) -> bool:
        """Whether `path` is a real file under the root: no symbolic link on the way."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        here = self.root
        for part in relative.parts:
            here = here / part
            if here.is_symlink():
                return False
        return True

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        write_bytes_atomic(path, data)
        os.chmod(path, 0o644)
