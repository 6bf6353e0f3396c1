"""Reading the governance behind a bank's balancer, where each request may reach another
node and one of them lags: the members and the proposals are read in one call each (one
state), and a read at a given block waits for a node that lacks it, or says so without a
traceback.

The balancer here is a small round-robin HTTP proxy in front of the real geth: every
other request reaches a "lagging node" that answers as geth does about a block it has
not imported yet (`header not found`) whenever a call names a block number.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.errors import StateError
from orchestrator.geth.client import http_web3
from orchestrator.governance import Governance
from orchestrator.governance import client as governance_client
from tests.governance.conftest import GovChain

pytestmark = pytest.mark.geth


class Balancer:
    """Round robin between the real node and one that has not imported recent blocks
    (`lag` blocks behind, or every numbered block when `lag` is None)."""

    def __init__(self, rpc_url: str, *, lag: int | None = None) -> None:
        self.rpc_url, self.lag = rpc_url, lag
        self.turn = 0
        self.calls: list[str] = []
        balancer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = balancer.answer(json.loads(body), body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, request: dict[str, Any], body: bytes) -> bytes:
        self.turn += 1
        self.calls.append(request["method"])
        lagging = self.turn % 2 == 0
        params = request.get("params") or []
        at = params[-1] if request["method"] == "eth_call" and len(params) > 1 else None
        if lagging and isinstance(at, str) and at.startswith("0x"):
            head = int(self._forward(b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}')
                       ["result"], 16)  # fmt: skip
            if self.lag is None or int(at, 16) > head - self.lag:
                error = {"code": -32000, "message": "header not found"}
                return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()
        return json.dumps(self._forward(body)).encode()

    def _forward(self, body: bytes) -> dict[str, Any]:
        req = urllib.request.Request(
            self.rpc_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            answer: dict[str, Any] = json.loads(r.read())
            return answer

    def __enter__(self) -> Balancer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def balanced(gov_chain: GovChain) -> Iterator[Balancer]:
    with Balancer(gov_chain.node.rpc_url, lag=None) as b:
        yield b


def test_members_and_proposals_are_each_one_call_of_one_state(
    gov_chain: GovChain, balanced: Balancer
) -> None:
    gov = Governance(balanced.url)
    for _ in range(4):  # whichever node answers
        members = gov.members()
        assert [m.name for m in members] == ["bank-a", "bank-b"]
        assert all(m.validators for m in members)
    balanced.calls.clear()
    gov.members()
    assert balanced.calls.count("eth_call") == 1  # (web3 may also ask eth_chainId)
    proposals = gov.proposals()
    assert proposals == [] or all(p.kind in ("add", "remove") for p in proposals)


def test_a_read_at_a_block_a_lagging_node_lacks_waits_for_another_answer(
    gov_chain: GovChain, balanced: Balancer
) -> None:
    head = int(http_web3(gov_chain.node.rpc_url).eth.block_number)
    gov = Governance(balanced.url)
    for _ in range(2):  # one of the two reaches the lagging node first
        assert [m.name for m in gov.members(block=head)] == ["bank-a", "bank-b"]
    assert "eth_call" in balanced.calls


def test_a_block_no_node_has_is_a_clear_error_not_a_traceback(
    gov_chain: GovChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(governance_client, "BLOCK_WAIT_SECONDS", 1.0)
    head = int(http_web3(gov_chain.node.rpc_url).eth.block_number)
    with pytest.raises(StateError, match=f"has not imported block {head + 1000}") as e:
        Governance(gov_chain.node.rpc_url).members(block=head + 1000)
    assert "a node behind the balancer lags" in (e.value.hint or "")
