"""A bank's consortium data, served read-only from its own nodes (`poactl serve-data`).

In Azure a bank's storage account allows no shared key, so the only URL another bank
could read its publication container with is a user-delegation SAS, which lives at most
seven days. Instead each of the bank's VMs serves the publication itself, as the retired
Azure template did with its `consortiumDataURL`: the bank's load balancer forwards
`http://<frontend>:8780/consortium` to any VM, and the VM reads the container with its
managed identity. The URL never changes and carries no credential; the network security
group admits only the other members.

The server speaks the read-only part of the Blob REST API that poactl's readers use
(`ContainerClient.from_container_url`): list the container's blobs by prefix, and get a
blob (whole, or a byte range). So a bank reads another bank's data the same way whether
the URL is this endpoint, a Blob container with a SAS, or Azurite in tests. Everything
else is refused: no write method, no other container, no other query, and only names of
consortium data (`names.is_published`), never a lease.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from orchestrator.boundaries import ConsortiumData
from orchestrator.errors import NodeError, PoaError
from orchestrator.network.names import is_published

log = logging.getLogger(__name__)

DATA_PORT = 8780
API_VERSION = "2021-08-06"  # what the answers claim to speak (the SDK does not check)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_LIST_QUERY = {"restype", "comp", "prefix", "marker", "maxresults", "include", "timeout"}


class DataServer:
    """`data` served read-only as the Blob container `container` at http://host:port/."""

    def __init__(
        self, data: ConsortiumData, host: str, port: int, *, container: str = "consortium"
    ) -> None:
        self.data, self.container = data, container
        handler = type("Handler", (_Handler,), {"server_state": self})
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise NodeError(
                f"cannot serve the consortium data on {host}:{port} ({e.strerror})",
                obj=f"{host}:{port}",
                hint="another process holds the port; pick another with --port",
            ) from e
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.container}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @contextmanager
    def running(self) -> Iterator[DataServer]:
        """Serve in a background thread for the duration of the block."""
        thread = threading.Thread(target=self.serve_forever, name="data-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server_state: DataServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _refuse(self) -> None:
        self._error(405, "UnsupportedHttpVerb", "this endpoint is read-only")

    do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _answer(self, *, body: bool) -> None:
        state = self.server_state
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        prefix = f"/{state.container}"
        try:
            if url.path in (prefix, prefix + "/"):
                if (
                    query.get("restype") != "container"
                    or query.get("comp") != "list"
                    or (set(query) - _LIST_QUERY)
                ):
                    self._error(403, "AuthorizationFailure", "only listing the container")
                    return
                self._list(query.get("prefix", ""), body=body)
            elif url.path.startswith(prefix + "/"):
                name = unquote(url.path[len(prefix) + 1 :])
                if set(query) - {"timeout"} or not is_published(name):
                    self._error(403, "AuthorizationFailure", "not consortium data")
                    return
                self._blob(name, body=body)
            else:
                self._error(404, "ContainerNotFound", "no such container")
        except PoaError as e:
            log.warning("consortium data: %s", e)
            self._error(503, "ServerBusy", "the bank's storage did not answer")

    def _list(self, prefix: str, *, body: bool) -> None:
        names = [n for n in self.server_state.data.list(prefix) if is_published(n)]
        blobs = "".join(
            f"<Blob><Name>{escape(n)}</Name><Properties><BlobType>BlockBlob</BlobType>"
            "</Properties></Blob>"
            for n in names
        )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ContainerName="{escape(self.server_state.container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{blobs}</Blobs><NextMarker />"
            "</EnumerationResults>"
        ).encode()
        self._send(200, xml, {"Content-Type": "application/xml"}, body=body)

    def _blob(self, name: str, *, body: bool) -> None:
        blob = self.server_state.data.read(name)
        if blob is None:
            self._error(404, "BlobNotFound", "the specified blob does not exist")
            return
        data, status = blob.data, 200
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": blob.etag,
            "Last-Modified": formatdate(usegmt=True),
            "Accept-Ranges": "bytes",
            "x-ms-blob-type": "BlockBlob",
            "x-ms-lease-status": "unlocked",
            "x-ms-lease-state": "available",
        }
        wanted = self.headers.get("x-ms-range") or self.headers.get("Range")
        if wanted:
            found = _RANGE.match(wanted.strip())
            size = len(data)
            if found is None or int(found.group(1)) >= max(size, 1):
                self._error(416, "InvalidRange", "the range cannot be satisfied",
                            extra={"Content-Range": f"bytes */{size}"})  # fmt: skip
                return
            start = int(found.group(1))
            end = min(int(found.group(2) or size - 1), size - 1)
            data, status = data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(status, data, headers, body=body)

    def _error(
        self, status: int, code: str, message: str, *, extra: dict[str, str] | None = None
    ) -> None:
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml", "x-ms-error-code": code, **(extra or {})}
        self._send(status, xml, headers, body=self.command != "HEAD")

    def _send(self, status: int, data: bytes, headers: dict[str, str], *, body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "x-ms-version": API_VERSION}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
