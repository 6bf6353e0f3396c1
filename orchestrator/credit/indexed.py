"""Reading a bank's read index (`poactl index`, `orchestrator.index`) over HTTP.

The index answers a subject's registry logs exactly as `eth_getLogs` gives them (so the
SDK decodes and checks them as it does the node's), with the block they are as of and
the node's head as the index last saw it:

    GET /v1/logs?subject=0x…[&furnisher=0x…][&min_block=N]
      200 {"registry": "0x…", "block": {"number": N, "hash": "0x…"}, "head": H,
           "behind": H - N, "logs": [{blockNumber, blockHash, logIndex, transactionHash,
           address, topics, data, removed}, …]}
      503 while the index has no registry or no block yet; 401 without a valid token
    GET /v1/status   what `poactl status` and the monitor show (lag, counts, problem)

With `min_block`, the index waits briefly until it holds that block. A reader that gets
no answer, or one too far behind, reads from the node instead (`CreditClient`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import urllib3

from orchestrator.boundaries import Secret
from orchestrator.credit.records import ReadFrom

log = logging.getLogger(__name__)

LOGS_PATH = "/v1/logs"
STATUS_PATH = "/v1/status"
REBUILD_PATH = "/v1/rebuild"
MIN_BLOCK_WAIT = 3.0  # seconds the index waits for a `min_block` it does not hold yet


@dataclass(frozen=True)
class IndexAnswer:
    """A subject's logs from the index, and how current they are."""

    logs: list[dict[str, Any]]
    read: ReadFrom
    registry: str  # the registry the index holds


class IndexReader:
    """A client of one bank's read index at `url` (`token`: the application's token,
    when the index asks for one). One connection pool, kept open (urllib3, without
    requests' per-call work: a read is a few milliseconds)."""

    def __init__(self, url: str, *, token: Secret | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {} if token is None else {"Authorization": f"Bearer {token.value}"}
        self._pool = urllib3.PoolManager(headers=headers, retries=False)
        self._warned = False

    def __repr__(self) -> str:
        return f"IndexReader({self.url})"

    def _get(self, path: str, fields: dict[str, str], timeout: float) -> tuple[int, Any]:
        response = self._pool.request("GET", self.url + path, fields=fields, timeout=timeout)
        body = response.data
        return response.status, (json.loads(body) if response.status == 200 else body[:200])

    def logs(
        self, subject: bytes, *, furnisher: str | None = None, min_block: int | None = None
    ) -> IndexAnswer | None:
        """The subject's logs (one bank's, with `furnisher`), or None when the index does
        not answer with them (down, not ready, refused): the caller reads the node."""
        params = {"subject": "0x" + subject.hex()}
        if furnisher is not None:
            params["furnisher"] = furnisher
        if min_block is not None:
            params["min_block"] = str(min_block)
        wait = MIN_BLOCK_WAIT if min_block is not None else 0.0
        try:
            status, doc = self._get(LOGS_PATH, params, self.timeout + wait)
            if status != 200:
                self.unavailable(f"HTTP {status}: {doc!r}")
                return None
            block, head = doc["block"], int(doc["head"])
            read = ReadFrom("index", int(block["number"]), head)
            logs, registry = doc["logs"], str(doc["registry"])
            if not isinstance(logs, list):
                raise TypeError("logs is not a list")
        except (urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError) as e:
            self.unavailable(f"{type(e).__name__}: {e}")
            return None
        self._warned = False
        return IndexAnswer(logs, read, registry)

    def status(self) -> dict[str, Any] | None:
        """The index's status document, or None when it does not answer."""
        try:
            status, doc = self._get(STATUS_PATH, {}, self.timeout)
        except (urllib3.exceptions.HTTPError, ValueError):
            return None
        return doc if status == 200 and isinstance(doc, dict) else None

    def unavailable(self, why: str) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        log.log(level, "the read index at %s did not answer (%s); reading from the node",
                self.url, why)  # fmt: skip
        self._warned = True
