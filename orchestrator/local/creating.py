"""Making a local consortium's state directory: the consortium file, the banks' vaults
with the consortium's pseudonym secret, and one `agent.yaml` per node, all made in a
staging directory beside it and renamed into place, so a failed `up` leaves nothing
half-made.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from orchestrator.agent.settings import AgentFile
from orchestrator.config import Consortium, NodeSpec, VaultSettings
from orchestrator.errors import StateError
from orchestrator.local.layout import UNIX_SOCKET_PATH_MAX, StateLayout
from orchestrator.wiring import make_vault

log = logging.getLogger(__name__)


def check_socket_paths(layout: StateLayout, consortium: Consortium) -> None:
    for node in consortium.nodes:
        ipc = layout.node(node.name).ipc
        if len(str(ipc)) > UNIX_SOCKET_PATH_MAX:
            raise StateError(
                f"geth's IPC socket path would be {len(str(ipc))} characters; "
                f"unix sockets allow {UNIX_SOCKET_PATH_MAX}",
                obj=str(ipc),
                hint="use a shorter --state-dir",
            )


def create_state(
    layout: StateLayout,
    consortium: Consortium,
    *,
    vault_of: Callable[[str], VaultSettings],
    agent_settings: Callable[[NodeSpec], AgentFile],
    joined_from: Mapping[str, str] | None = None,
) -> None:
    """The consortium file and one agent.yaml per node (`agent_settings`), made aside and
    renamed in (with `joined_from`, member -> URL, a bank that joins: then no new
    pseudonym secret, the consortium's reaches it from a member)."""
    root = layout.root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.creating-", dir=root.parent))
    try:
        staged = StateLayout(staging)
        staged.config.write_text(consortium.canonical())
        # Credit records: one consortium pseudonym secret in every bank's vault (the
        # members agree it out of band; here `up` plays that part). Local vaults are
        # written in the staging dir, so a failed `up` leaves none behind.
        from orchestrator.credit.pseudonym import share_secret
        from orchestrator.retry import retry_transient

        vaults = {}
        for member in consortium.members():
            vault = vault_of(member)
            if vault.kind == "local" and vault.path and vault.path.is_relative_to(root):
                moved = staging / vault.path.relative_to(root)
                vault = vault.model_copy(update={"path": moved})
            vaults[member] = make_vault(vault)
        if joined_from is None:
            retry_transient(lambda: share_secret(vaults), what="pseudonym secret", timeout=30)
        else:
            joined = [{"member": m, "url": u} for m, u in joined_from.items()]
            (staging / layout.joined.name).write_text(json.dumps(joined[0]))
        for node in consortium.nodes:
            paths = staged.node(node.name)
            paths.root.mkdir(parents=True)
            settings = agent_settings(node)
            paths.agent_config.write_text(
                yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
            )
        if root.exists():
            root.rmdir()  # empty, checked before
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("created consortium state in %s", root)
