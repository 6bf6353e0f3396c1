"""The composition root: the one place that turns settings into backends.

Services see only the Protocols of `orchestrator.boundaries`; an import-linter contract
in pyproject.toml keeps every other module away from the backend modules. Azure
backends authenticate with `DefaultAzureCredential` (a VM's managed identity) unless
the settings name a storage account key file (Azurite, or an account without RBAC).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

from orchestrator.boundaries import ConsortiumData, Publication, Runtime, Store, Vault
from orchestrator.config import PublishSettings, RuntimeSettings, StoreSettings, VaultSettings
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from orchestrator.azure.operate import Site
    from orchestrator.store.azure_blob import AzureBlobStore
    from orchestrator.store.published import DirectoryData

log = logging.getLogger(__name__)


def make_store(settings: StoreSettings, *, member: str | None = None) -> Store:
    """The bank's store; with `publish` or `consortium_data` in the settings, `member`'s
    view of the consortium (its own store, what it publishes, what the others publish)."""
    own = _own_store(settings)
    if settings.publish is None and not settings.consortium_data:
        return own
    if member is None:
        raise ConfigError(
            "a store that reads other banks' consortium data needs to know its bank",
            obj="store",
            hint="name the member in the settings that hold this store",
        )
    from orchestrator.network.data import ConsortiumStore

    return ConsortiumStore(
        member,
        own,
        others={m: open_consortium_data(url) for m, url in settings.consortium_data.items()},
        publication=None if settings.publish is None else _publication(settings.publish),
        shared_from=settings.shared_from,
        urls=settings.consortium_data,
        open_data=open_consortium_data,
    )


def _own_store(settings: StoreSettings) -> Store:
    if settings.kind == "local":
        from orchestrator.store.local import LocalStore

        assert settings.path is not None  # checked by the settings model
        return LocalStore(settings.path)
    from orchestrator.store.azure_blob import AzureBlobStore

    assert settings.account_url is not None
    return AzureBlobStore(
        settings.account_url, settings.container, credential=_storage_credential(settings)
    )


def _publication(settings: PublishSettings) -> Publication:
    return _published(settings)


def _published(settings: PublishSettings) -> DirectoryData | AzureBlobStore:
    """The bank's publication: what it writes there (`Publication`), and what its data
    endpoint serves from there (`ConsortiumData`)."""
    if settings.kind == "local":
        from orchestrator.store.published import DirectoryData

        assert settings.path is not None
        return DirectoryData(settings.path)
    from orchestrator.store.azure_blob import AzureBlobStore

    assert settings.account_url is not None
    return AzureBlobStore(
        settings.account_url, settings.container, credential=_storage_credential(settings)
    )


def open_consortium_data(url: str) -> ConsortiumData:
    """A bank's published consortium data, read-only: a directory (a path or a `file://`
    URL) or a Blob container (an `http(s)://` container URL, in Azure a read-only SAS)."""
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        from orchestrator.store.azure_blob import AzureBlobStore

        return AzureBlobStore.from_container_url(url)
    if parsed.scheme == "file" or (not parsed.scheme and url.startswith("/")):
        from orchestrator.store.published import DirectoryData

        return DirectoryData(Path(url2pathname(parsed.path) if parsed.scheme else url))
    from orchestrator.network.data import shown_url

    raise ConfigError(
        f"{shown_url(url)!r} is not a consortium data URL",
        obj=shown_url(url),
        hint="give an absolute path, a file:// URL, or a Blob container URL "
        "(https://ACCOUNT.blob.core.windows.net/consortium?<read-only SAS>)",
    )


def _storage_credential(settings: StoreSettings | PublishSettings) -> object:
    if settings.account_key_file is None:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    from azure.core.credentials import AzureNamedKeyCredential

    key = _read_secret_file(settings.account_key_file, "storage account key")
    url = urlparse(str(settings.account_url))
    # Azurite puts the account in the path (/devstoreaccount1); Azure in the host name.
    account = url.path.strip("/").split("/")[0] or (url.hostname or "").split(".")[0]
    return AzureNamedKeyCredential(account, key)


def make_vault(settings: VaultSettings) -> Vault:
    if settings.kind == "local":
        from orchestrator.vault.local import LocalVault

        assert settings.path is not None
        return LocalVault(settings.path)
    from azure.identity import DefaultAzureCredential

    from orchestrator.vault.azure_kv import AzureKeyVault

    assert settings.url is not None
    return AzureKeyVault(
        settings.url,
        credential=DefaultAzureCredential(),
        connection_verify=str(settings.ca_file) if settings.ca_file else True,
        verify_challenge_resource=settings.verify_challenge_resource,
    )


def run_agent(config: Path) -> int:
    """Build the agent of `config` with its backends and run it (`poactl agent`)."""
    from orchestrator.agent.machine import Agent
    from orchestrator.agent.settings import load_agent_config

    settings = load_agent_config(config)
    labels = {"consortium": str(settings.consortium_file.absolute()), "member": settings.member}
    agent = Agent(
        settings,
        store=make_store(settings.store, member=settings.member),
        vault=make_vault(settings.vault),
        runtime=make_runtime(settings.runtime, labels=labels),
        geth=geth_command(settings.runtime),
    )
    return agent.run()


def run_monitor(config: Path) -> int:
    """Build one bank's monitor from its settings and run it (`poactl monitor`)."""
    from orchestrator.config import load_config
    from orchestrator.monitor.service import Monitor
    from orchestrator.monitor.settings import load_monitor_config

    settings = load_monitor_config(config)
    monitor = Monitor(
        settings,
        store=make_store(settings.store, member=settings.member),
        consortium=load_config(settings.consortium_file),
    )
    return monitor.run()


def bank_site(config: Path) -> Site:
    """The bank an agent file belongs to, for its operator (`poactl azure operate`): its
    store and view of the others, its vault, its own node's JSON-RPC."""
    from orchestrator.agent.settings import load_agent_config
    from orchestrator.azure.operate import Site

    settings = load_agent_config(config)
    return Site(
        member=settings.member,
        store=make_store(settings.store, member=settings.member),
        vault=make_vault(settings.vault),
        rpc_url=f"http://{settings.rpc_host}:{settings.ports.http}",
        open_data=open_consortium_data,
    )


def run_data_server(config: Path, port: int) -> int:
    """Serve the agent's bank's publication read-only on its host (`poactl serve-data`)."""
    import signal

    from orchestrator.agent.settings import load_agent_config
    from orchestrator.network.served import DataServer

    settings = load_agent_config(config)
    publish = settings.store.publish
    if publish is None:
        raise ConfigError(
            "this agent publishes no consortium data",
            obj=f"{config}: store.publish",
            hint="give the agent a publication (install_agent.sh --publish-container)",
        )
    server = DataServer(_published(publish), settings.host, port, container=publish.container)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("serving %s's consortium data at %s", settings.member, server.url)
    server.serve_forever()
    return 0


def run_balancer(config: Path) -> int:
    """Run one bank's load balancer (HAProxy and the JSON-RPC filter) (`poactl balancer`)."""
    from orchestrator.balancer.service import Balancer
    from orchestrator.balancer.settings import load_balancer_config

    return Balancer(load_balancer_config(config)).run()


def run_index(config: Path) -> int:
    """Build one bank's read index from its settings and run it (`poactl index`): the
    embedded SQLite database, the registry from the settings or the bank's store."""
    from orchestrator.index.service import ReadIndex
    from orchestrator.index.settings import load_index_config
    from orchestrator.index.sqlite import SqliteIndex
    from orchestrator.index.store import Registry

    settings = load_index_config(config)
    source: Callable[[], Registry | None]
    if settings.registry is not None:
        fixed = Registry(settings.registry, settings.from_block)
        source = lambda: fixed  # noqa: E731
    else:
        from orchestrator.credit.deployment import read_registry

        assert settings.store is not None  # IndexFile asks for one or the other
        store = make_store(settings.store, member=settings.member)

        def source() -> Registry | None:
            record = read_registry(store)
            return None if record is None else Registry(record.address, record.block_number)

    index = ReadIndex(settings, store=SqliteIndex(settings.database_path), registry_source=source)
    return index.run()


def geth_command(settings: RuntimeSettings) -> str:
    """argv[0] for geth: the checked binary, or (in a container) the image's own geth."""
    if settings.kind == "docker":
        return "geth"  # the Docker runtime runs the image's geth whatever argv[0] says
    from orchestrator.geth.command import locate_geth

    return locate_geth(settings.geth)


def make_runtime(settings: RuntimeSettings, *, labels: Mapping[str, str]) -> Runtime:
    """The runtime; for Docker the image is checked first (geth 1.13.15, present)."""
    if settings.kind == "process":
        from orchestrator.runtime.process import ProcessRuntime

        return ProcessRuntime()
    from orchestrator.runtime.docker import DockerRuntime
    from orchestrator.runtime.image import check_image, connect

    client = connect(settings.docker_host)
    check_image(client, settings.image)
    return DockerRuntime(client, image=settings.image, labels=labels)


def remove_containers(settings: RuntimeSettings, *, labels: Mapping[str, str]) -> list[str]:
    """Remove exactly the containers carrying `labels` (`poactl down`); none for processes."""
    if settings.kind != "docker":
        return []
    from orchestrator.runtime.docker import remove_labelled
    from orchestrator.runtime.image import connect

    return remove_labelled(connect(settings.docker_host), labels)


def _read_secret_file(path: Path, what: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read the {what} ({e.strerror})",
            obj=str(path),
            hint="check the path and that the agent's user may read it",
        ) from e
