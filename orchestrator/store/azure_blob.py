"""The Azure store: blobs and blob leases in one Azure Storage container.

Azure itself enforces the lease rules; this module only maps its answers. Precondition
and lease conflicts (412, 409) are the Protocol's normal answers (None/False); a missing
connection, a timeout, 408/429/5xx are `ServiceUnavailable`; 401/403 are `AccessDenied`;
any other refusal is a `ConfigError`. The SDK never retries (`retry_total=0`): callers
retry with a deadline (`orchestrator.retry`).

The container is created when a write or a lease finds it missing (or up front with
`ensure_container()`); reading or listing a missing container finds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, TypeVar, cast

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

from orchestrator.boundaries import Blob, Lease
from orchestrator.errors import AccessDenied, ConfigError, ServiceUnavailable
from orchestrator.store import check_conditions, check_duration, lease_id_or_new

log = logging.getLogger(__name__)
T = TypeVar("T")

CONFLICT = (409, 412)  # a condition or a lease said no: a normal answer


class AzureBlobStore:
    """A `Store` in container `container` of the storage account at `account_url`."""

    def __init__(
        self,
        account_url: str,
        container: str,
        *,
        credential: object,
        connection_timeout: float = 3.0,
        read_timeout: float = 5.0,
    ) -> None:
        self._url = f"{account_url.rstrip('/')}/{container}"
        self._container = ContainerClient(
            account_url,
            container,
            credential=cast(Any, credential),
            retry_total=0,
            connection_timeout=connection_timeout,
            read_timeout=read_timeout,
        )

    @classmethod
    def from_container_url(cls, url: str, *, timeout: float = 5.0) -> AzureBlobStore:
        """A container reached by its URL alone, e.g. another bank's consortium data
        through a read-only SAS URL (`https://ACCOUNT.blob.core.windows.net/C?sv=...`)."""
        store = cls.__new__(cls)
        store._url = url.split("?", 1)[0]  # never log the signature
        store._container = ContainerClient.from_container_url(
            url, retry_total=0, connection_timeout=3.0, read_timeout=timeout
        )
        return store

    def __repr__(self) -> str:
        return f"AzureBlobStore({self._url!r})"

    def put(self, name: str, data: bytes) -> None:
        """Publish `data` as `name` (this container as a bank's `Publication`)."""
        self.write(name, data)

    def ensure_container(self) -> None:
        """Create the container unless it exists."""
        with self._asking("create the container", None):
            try:
                self._container.create_container()
                log.info("created storage container %s", self._url)
            except HttpResponseError as e:
                if _code(e) != "ContainerAlreadyExists":
                    raise

    # -- blobs -------------------------------------------------------------------------

    def read(self, name: str) -> Blob | None:
        with self._asking("read", name):
            try:
                stream = self._blob(name).download_blob()
                data = stream.readall()
            except ResourceNotFoundError:
                return None
        props = stream.properties
        return Blob(name, data, str(props.etag), leased=props.lease.status == "locked")

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        check_conditions(if_match, if_absent, obj=self._obj(name))
        options: dict[str, Any] = {"overwrite": not if_absent}  # not overwrite: If-None-Match *
        if if_match is not None:
            options.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        if lease is not None:
            options["lease"] = lease.lease_id
        blob = self._blob(name)
        with self._asking("write", name):
            try:
                result = self._in_container(lambda: blob.upload_blob(data, **options))
            except HttpResponseError as e:
                if e.status_code in CONFLICT:
                    return None
                raise
        return str(result["etag"])

    def list(self, prefix: str) -> list[str]:
        with self._asking("list", prefix):
            try:
                names = [*self._container.list_blob_names(name_starts_with=prefix)]
            except ResourceNotFoundError:
                return []
        return sorted(names)

    # -- leases ------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        check_duration(duration, obj=self._obj(name))
        wanted = lease_id_or_new(lease_id, obj=self._obj(name))
        blob = self._blob(name)
        client = BlobLeaseClient(blob, lease_id=wanted)
        with self._asking("acquire the lease", name):
            try:
                try:
                    client.acquire(lease_duration=duration)
                except ResourceNotFoundError:
                    self._in_container(lambda: _create_empty(blob))
                    client.acquire(lease_duration=duration)
            except HttpResponseError as e:
                if e.status_code in CONFLICT:
                    return None
                raise
        return Lease(name, wanted, duration)

    def renew_lease(self, lease: Lease) -> bool:
        with self._asking("renew the lease", lease.name):
            try:
                BlobLeaseClient(self._blob(lease.name), lease_id=lease.lease_id).renew()
            except HttpResponseError as e:
                if e.status_code == 404 or e.status_code in CONFLICT:
                    return False
                raise
        return True

    def release_lease(self, lease: Lease) -> None:
        with self._asking("release the lease", lease.name):
            try:
                BlobLeaseClient(self._blob(lease.name), lease_id=lease.lease_id).release()
            except HttpResponseError as e:
                if e.status_code != 404 and e.status_code not in CONFLICT:
                    raise

    def break_lease(self, name: str) -> None:
        with self._asking("break the lease", name):
            try:
                BlobLeaseClient(self._blob(name)).break_lease(lease_break_period=0)
            except HttpResponseError as e:
                if e.status_code != 404 and e.status_code not in CONFLICT:
                    raise

    # -- the service -------------------------------------------------------------------

    def _blob(self, name: str) -> BlobClient:
        return self._container.get_blob_client(name)

    def _obj(self, name: str | None) -> str:
        return f"{self._url}/{name}" if name else self._url

    def _in_container(self, call: Callable[[], T]) -> T:
        """`call()`, once more after creating the container if it was missing."""
        try:
            return call()
        except ResourceNotFoundError as e:
            if _code(e) != "ContainerNotFound":
                raise
        self.ensure_container()
        return call()

    @contextmanager
    def _asking(self, op: str, name: str | None) -> Iterator[None]:
        """Turn the SDK's errors for `op` on blob `name` into poactl's error tree."""
        obj = self._obj(name)
        unavailable = (
            f"check that {self._url} is reachable from this machine (DNS, firewall, "
            "private endpoint) and that the storage service is up; poactl retries meanwhile"
        )
        try:
            yield
        except (ServiceRequestError, ServiceResponseError) as e:
            raise ServiceUnavailable(
                f"could not {op}: storage did not answer ({_first_line(e)})",
                obj=obj,
                hint=unavailable,
            ) from e
        except HttpResponseError as e:
            status, code = e.status_code, _code(e)
            answer = f"could not {op}: storage refused it ({status} {code})"
            if status is None and isinstance(e, ClientAuthenticationError):  # no token
                answer, status = f"could not {op}: no access token ({_first_line(e)})", 401
            if status in (401, 403):
                raise AccessDenied(
                    answer,
                    obj=obj,
                    hint="check the storage account key, or that this machine's managed "
                    'identity has the role "Storage Blob Data Contributor" on the account',
                ) from e
            if status is None or status in (408, 429) or status >= 500:
                raise ServiceUnavailable(answer, obj=obj, hint=unavailable) from e
            raise ConfigError(
                answer,
                obj=obj,
                hint="check the storage account URL and container name in the configuration",
            ) from e
        except AzureError as e:
            raise ServiceUnavailable(
                f"could not {op}: storage did not answer ({_first_line(e)})",
                obj=obj,
                hint=unavailable,
            ) from e
        except ValueError as e:  # the SDK's word for an answer it cannot read
            raise ServiceUnavailable(
                f"could not {op}: the answer is not Blob Storage's ({_first_line(e)})",
                obj=obj,
                hint=f"check that {self._url} is a Blob container URL (for another bank's "
                "consortium data, its read-only SAS URL); poactl retries meanwhile",
            ) from e


def _create_empty(blob: BlobClient) -> None:
    try:
        blob.upload_blob(b"", overwrite=False)
    except HttpResponseError as e:
        if e.status_code not in CONFLICT:  # someone else created it meanwhile
            raise


def _code(e: HttpResponseError) -> str:
    code = getattr(e, "error_code", None)  # the storage SDK sets it on every error it raises
    return str(code.value if isinstance(code, Enum) else code)


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "message", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__
