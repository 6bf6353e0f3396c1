"""The signer's socket: geth's clef protocol (JSON-RPC over a unix socket) for one node.

geth 1.13.15 started with `--signer <path>` dials this socket, calls `account_version`
once (it refuses to start if nobody answers), `account_list` to find its etherbase, and
`account_signData` to seal. It also forwards `eth_sign` (`account_signData` with
`text/plain`) and `eth_signTransaction`/`eth_sendTransaction` (`account_signTransaction`)
for any address the signer lists: those are refused, like every other method. The
socket is created mode 0600 in the node's own directory, so only geth (and the agent's
own user) can reach it.

Requests arrive as a stream of JSON values on one connection (geth's IPC codec), single
or batched; each gets its answer on the same connection.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestrator.errors import PoaError
from orchestrator.signer.policy import Refused, SigningPolicy

log = logging.getLogger(__name__)

VERSION = "6.1.0"  # clef's external API version; geth only checks that there is one
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
REFUSED = -32000
MAX_REQUEST_BYTES = 1 << 20


class SignerServer:
    """Serve `policy` on the unix socket `path` while in the `with` block."""

    def __init__(self, path: Path, policy: SigningPolicy) -> None:
        self.path = path
        self.policy = policy
        self._sock: socket.socket | None = None
        self._closed = threading.Event()

    def __enter__(self) -> SignerServer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a socket left by a killed agent (we hold the lock)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.path.chmod(0o600)
        sock.listen(8)
        self._sock = sock
        threading.Thread(target=self._accept, name="signer", daemon=True).start()
        log.info("external signer listening on %s", self.path)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.policy.release()
        self._closed.set()
        if self._sock is not None:
            self._sock.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._serve, args=(conn,), name="signer-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        with conn:
            while not self._closed.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk.decode(errors="replace")
                if len(buffer) > MAX_REQUEST_BYTES:
                    log.warning("signer: dropping a connection that sent over 1 MiB unparsed")
                    return
                while buffer.strip():
                    try:
                        request, end = decoder.raw_decode(buffer.lstrip())
                    except ValueError:
                        break  # incomplete: wait for more bytes
                    buffer = buffer.lstrip()[end:]
                    answer = self.answer(request)
                    if answer is not None:
                        conn.sendall(json.dumps(answer).encode() + b"\n")

    def answer(self, request: Any) -> Any:
        """The reply to one JSON-RPC message or batch (None for notifications)."""
        if isinstance(request, list):
            replies = [r for r in (self._one(item) for item in request) if r is not None]
            return replies or None
        return self._one(request)

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(None, INVALID_PARAMS, "not a JSON-RPC request object")
        rid, method, params = request.get("id"), request.get("method"), request.get("params")
        if rid is None:
            return None
        started = time.monotonic()
        try:
            return {"jsonrpc": "2.0", "id": rid, "result": self._call(method, params or [])}
        except Refused as e:
            self.policy.refused(e, time.monotonic() - started)
            code = METHOD_NOT_FOUND if isinstance(e, _MethodNotFound) else REFUSED
            return _error(rid, code, f"poactl signer: {e.what}")
        except PoaError as e:  # a failure the policy did not turn into a refusal
            log.error("signer: %s", e)
            return _error(rid, REFUSED, f"poactl signer: {e.what}")
        except _BadParams as e:
            return _error(rid, INVALID_PARAMS, str(e))

    def _call(self, method: Any, params: Any) -> Any:
        if method == "account_version":
            return VERSION
        if method == "account_list":
            return self.policy.accounts()
        if method == "account_signData":
            content_type, address, data = _sign_params(params)
            return "0x" + self.policy.sign_data(content_type, address, data).hex()
        if method == "account_signTransaction":
            raise Refused("signs no transactions: a validator key signs blocks only")
        raise _MethodNotFound(method)


class _BadParams(Exception):
    pass


class _MethodNotFound(Refused):
    def __init__(self, method: Any) -> None:
        super().__init__(f"method {str(method)[:64]!r} is not offered")


def _sign_params(params: Any) -> tuple[str, str, bytes]:
    if not (
        isinstance(params, list) and len(params) == 3 and all(isinstance(p, str) for p in params)
    ):
        raise _BadParams("account_signData takes [contentType, address, data]")
    content_type, address, data = params
    try:
        return content_type, address, bytes.fromhex(data.removeprefix("0x"))
    except ValueError as e:
        raise _BadParams("account_signData's data is not hex") from e


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
