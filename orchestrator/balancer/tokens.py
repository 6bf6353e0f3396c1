"""Application tokens: only a bank's own applications get through its balancer.

Each application has a file `<tokens_dir>/<application>.token` (mode 0600) holding a
random token; the application sends `Authorization: Bearer <token>`. HAProxy looks the
header's token up in the map this module writes (`<token> <application>` per line) and
answers 401 to anything else; the filter and the nodes never see the token.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.statefile import write_bytes_atomic

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def create_token(tokens_dir: Path, application: str) -> Path:
    """A new token for `application` (kept if it exists); its file."""
    if not APP_NAME.match(application):
        raise ConfigError(
            "not a valid application name",
            obj=repr(application),
            hint="use 1-63 lowercase letters, digits and dashes",
        )
    path = tokens_dir / f"{application}.token"
    if not path.exists():
        tokens_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_bytes_atomic(path, (secrets.token_urlsafe(32) + "\n").encode())
        os.chmod(path, 0o600)
    return path


def read_token(path: Path) -> str:
    return path.read_text().strip()


def token_map(tokens_dir: Path) -> str:
    """HAProxy's map: one `<token> <application>` line per token file."""
    lines = []
    for path in sorted(tokens_dir.glob("*.token")) if tokens_dir.is_dir() else []:
        token = read_token(path)
        if token and " " not in token:
            lines.append(f"{token} {path.stem}")
    return "\n".join(lines) + ("\n" if lines else "")
