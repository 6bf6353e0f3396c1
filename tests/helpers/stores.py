"""A real store seen through a wrapper: every call goes to `inner`; a test subclasses it
and overrides only the calls it slows down, counts or makes race. A wrapper, not a
mock: the answers are the real backend's."""

from __future__ import annotations

from orchestrator.boundaries import Blob, Lease, Store


class DelegatingStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def read(self, name: str) -> Blob | None:
        return self.inner.read(name)

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        lease: Lease | None = None,
    ) -> str | None:
        return self.inner.write(name, data, if_match=if_match, if_absent=if_absent, lease=lease)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def acquire_lease(
        self, name: str, duration: int, *, lease_id: str | None = None
    ) -> Lease | None:
        return self.inner.acquire_lease(name, duration, lease_id=lease_id)

    def renew_lease(self, lease: Lease) -> bool:
        return self.inner.renew_lease(lease)

    def release_lease(self, lease: Lease) -> None:
        self.inner.release_lease(lease)

    def break_lease(self, name: str) -> None:
        self.inner.break_lease(name)
