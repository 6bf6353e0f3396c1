"""Deciding a JSON-RPC request the way geth will read it, and passing on only what was
decided.

geth decodes a request with Go's `encoding/json`: an object key matches a field
case-insensitively, the last of duplicate keys wins, escapes are decoded, and a body
whose first non-blank byte is `[` is a batch. A filter that reads the body any other way
can be fooled (`{"method":"eth_blockNumber","Method":"eth_sign"}` runs `eth_sign`).
This module reads each request by geth's rules, checks its method against the
allowlist, and then *re-writes* it: what reaches geth is a canonical
`{"jsonrpc","id","method","params"}` object built from what was checked, never the
client's bytes (as proxyd does). Whatever ambiguity the client put in stays here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 100

# What an application may call through its bank's balancer: reads, sending a signed
# transaction, and subscriptions to new heads and logs (WebSocket).
READS = frozenset({
    "eth_blockNumber", "eth_call", "eth_chainId", "eth_estimateGas", "eth_feeHistory",
    "eth_gasPrice", "eth_getBalance", "eth_getBlockByHash", "eth_getBlockByNumber",
    "eth_getBlockReceipts", "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber", "eth_getCode", "eth_getLogs", "eth_getProof",
    "eth_getStorageAt", "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex", "eth_getTransactionByHash",
    "eth_getTransactionCount", "eth_getTransactionReceipt", "eth_maxPriorityFeePerGas",
    "eth_syncing", "eth_getUncleCountByBlockHash", "eth_getUncleCountByBlockNumber",
    "net_version", "net_listening", "net_peerCount", "web3_clientVersion", "web3_sha3",
})  # fmt: skip
ALLOWED = READS | {"eth_sendRawTransaction"}
SUBSCRIPTIONS = frozenset({"newHeads", "logs"})
WS_ONLY = frozenset({"eth_subscribe", "eth_unsubscribe"})

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


@dataclass(frozen=True)
class Refusal:
    """A request the balancer answers itself, with a JSON-RPC error."""

    id: Any
    code: int
    message: str

    def reply(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        return {"jsonrpc": "2.0", "id": self.id, "error": error}


@dataclass(frozen=True)
class Decision:
    """One request of a body: what to forward (canonical), or why it is refused."""

    forward: dict[str, Any] | None
    refusal: Refusal | None


def _go_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as Go sees a struct: keys folded, the last duplicate winning."""
    folded: dict[str, Any] = {}
    for key, value in pairs:
        folded[key.casefold()] = value
    return folded


def _go_parse(body: bytes) -> Any:
    text = body.decode("utf-8")  # geth rejects invalid UTF-8 as well (it replaces, we refuse)
    return json.loads(text, object_pairs_hook=_go_object)


def parse_body(body: bytes) -> tuple[list[Any], bool] | Refusal:
    """The requests of a body and whether it was a batch; a Refusal for the whole body."""
    if len(body) > MAX_BODY_BYTES:
        return Refusal(None, INVALID_REQUEST, f"body over {MAX_BODY_BYTES} bytes")
    try:
        parsed = _go_parse(body)
    except (ValueError, UnicodeDecodeError) as e:
        return Refusal(None, PARSE_ERROR, f"parse error: {e}")
    if isinstance(parsed, list):
        if not parsed:
            return Refusal(None, INVALID_REQUEST, "empty batch")
        if len(parsed) > MAX_BATCH:
            return Refusal(None, INVALID_REQUEST, f"batch of {len(parsed)}; at most {MAX_BATCH}")
        return parsed, True
    return [parsed], False


def decide(request: Any, *, websocket: bool) -> Decision:
    """Allow or refuse one request; an allowed one is re-written canonically."""
    if not isinstance(request, dict):
        return Decision(None, Refusal(None, INVALID_REQUEST, "not a JSON-RPC request object"))
    rid = request.get("id")
    method = request.get("method")
    params = request.get("params", [])
    if not isinstance(method, str):
        return Decision(None, Refusal(rid, INVALID_REQUEST, "no method"))
    if params is None:
        params = []
    if not isinstance(params, list):
        return Decision(None, Refusal(rid, INVALID_PARAMS, "params must be an array"))
    allowed = method in ALLOWED or (websocket and method in WS_ONLY)
    if not allowed:
        where = "" if method not in WS_ONLY else " over HTTP (use the WebSocket endpoint)"
        return Decision(
            None,
            Refusal(rid, METHOD_NOT_FOUND, f"method {method[:64]!r} is not allowed{where}"),
        )
    if method == "eth_subscribe" and (not params or params[0] not in SUBSCRIPTIONS):
        kind = params[0] if params else None
        return Decision(None, Refusal(rid, INVALID_PARAMS, f"subscription {kind!r} is not allowed"))
    canonical = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return Decision(canonical, None)


def canonical_json(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode()
