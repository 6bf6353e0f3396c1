"""The IPC client: one raw JSON-RPC call to a local geth over its unix socket.

geth's IPC carries what HTTP never does (`admin`, `clique`, `miner`), so the agent and
the local tools speak to their own node here. Two calls, because "geth answered null"
(`miner_stop`, `clique_propose` on success) and "geth could not be asked" mean
different things:

* `ipc_request` returns geth's result, `None` included, and raises `NodeUnreachable`
  when geth could not be asked or `RpcRefused` when it answered with an error;
* `ipc_probe` is for reads whose answer is never null (`eth_blockNumber`,
  `clique_getSigners`): the result, or `None` when there is none to be had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from requests.exceptions import RequestException
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint

from orchestrator.errors import NodeUnreachable, RpcRefused
from orchestrator.geth.client import ipc_web3

# What web3's IPC provider raises when the socket is missing, refuses or times out.
TRANSPORT_ERRORS = (RequestException, Web3Exception, OSError, ValueError, TimeoutError)


def ipc_request(
    ipc_path: Path, method: str, params: list[Any] | None = None, *, timeout: float = 3.0
) -> Any:
    """geth's `result` for one call (None when geth answered null)."""
    if not ipc_path.exists():
        raise NodeUnreachable(
            f"cannot call {method}: geth's IPC socket does not exist",
            obj=str(ipc_path),
            hint="geth is not running (or not yet listening); see the node's geth.log",
        )
    try:
        response = ipc_web3(ipc_path, timeout=timeout).provider.make_request(
            RPCEndpoint(method), params or []
        )
    except TRANSPORT_ERRORS as e:
        raise NodeUnreachable(
            f"cannot call {method}: {type(e).__name__}: {e}",
            obj=str(ipc_path),
            hint="geth may be stopped, starting or overloaded; see the node's geth.log",
        ) from e
    if "error" in response:
        error = response["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise RpcRefused(
            f"geth refused {method}: {message}",
            obj=str(ipc_path),
            hint="check the method's parameters and that its API is enabled on IPC",
        )
    return response.get("result")


def ipc_probe(
    ipc_path: Path, method: str, params: list[Any] | None = None, *, timeout: float = 3.0
) -> Any:
    """The result of a read whose answer is never null, or None when geth could not be
    asked or refused: for probes and health checks, where both mean "unknown"."""
    try:
        return ipc_request(ipc_path, method, params, timeout=timeout)
    except (NodeUnreachable, RpcRefused):
        return None
