"""`index.yaml`: what one bank's read index needs, validated once.

    member: bank-a                   # the bank it belongs to
    host: 127.0.0.1                  # where it answers reads, /v1/status and /metrics
    port: 8945
    rpc_urls: [http://127.0.0.1:8545]   # the bank's own nodes, the first preferred
    state_dir: /var/lib/poactl/index    # index.sqlite
    store: {kind: local, path: ...}  # the bank's store: where the registry is recorded
    # registry: "0x…"                # or the registry's address and deployment block,
    # from_block: 12                 #   given here (then no store is read)
    # tokens_dir: /etc/poactl/tokens # reads need one of these application tokens
    # database: {kind: sqlite}       # the embedded default; the only kind so far
    # poll_seconds: 0.25             # how often the node's head is asked while caught up

`poactl up` writes one per bank under `indexes/<bank>/`; on a VM, `install_agent.sh
--index` writes `/etc/poactl/index.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from orchestrator.config import (
    FilePath,
    MemberName,
    Port,
    StoreSettings,
    Strict,
    load_settings,
)


class IndexDatabase(Strict):
    """Where the index keeps its data: `sqlite` (the embedded default) in `path`, or
    `<state_dir>/index.sqlite`. A server database is another kind of the same interface
    (`orchestrator.index.store.IndexStore`)."""

    kind: Literal["sqlite"] = "sqlite"
    path: FilePath | None = None


class IndexFile(Strict):
    member: MemberName
    host: str = "127.0.0.1"
    port: Port
    rpc_urls: Annotated[list[str], Field(min_length=1)]
    state_dir: FilePath
    store: StoreSettings | None = None
    registry: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")] | None = None
    from_block: Annotated[int, Field(ge=0)] = 0
    tokens_dir: FilePath | None = None
    database: IndexDatabase = IndexDatabase()
    poll_seconds: Annotated[float, Field(ge=0.05, le=60)] = 0.25

    @model_validator(mode="after")
    def _registry_known(self) -> IndexFile:
        if self.registry is None and self.store is None:
            raise ValueError("give the registry's address (`registry`) or the bank's `store`")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def database_path(self) -> Path:
        return self.database.path or self.state_dir / "index.sqlite"


def load_index_config(path: Path) -> IndexFile:
    return load_settings(
        IndexFile, path, what="the read index's settings",
        example="orchestrator/index/settings.py",
        hint="pass the file with --config (`poactl up` writes indexes/<bank>/index.yaml)",
    )  # fmt: skip
