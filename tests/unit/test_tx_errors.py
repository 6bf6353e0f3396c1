"""How `geth.tx` tells the bank's balancer saying "no node answered" (a transient
condition: retried, then a plain error) from a node's own JSON-RPC errors."""

from __future__ import annotations

from web3.exceptions import Web3RPCError

from orchestrator.errors import ServiceUnavailable
from orchestrator.geth.tx import NO_NODE_ANSWERED, balancer_unanswered, transport_error


def rpc_error(code: int, message: str) -> Web3RPCError:
    answer = {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    return Web3RPCError(message, rpc_response=answer)  # type: ignore[arg-type]


def test_the_balancers_refusal_is_transient_and_a_nodes_error_is_not() -> None:
    assert balancer_unanswered(rpc_error(-32603, f"{NO_NODE_ANSWERED}; try again"))
    assert not balancer_unanswered(rpc_error(-32000, "execution reverted"))
    assert not balancer_unanswered(Web3RPCError("no response"))
    error = transport_error(rpc_error(-32603, NO_NODE_ANSWERED), "http://lb")
    assert isinstance(error, ServiceUnavailable) and error.obj == "http://lb"
