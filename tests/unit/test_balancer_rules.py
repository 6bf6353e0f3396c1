"""The balancer's pure parts: reading a JSON-RPC body the way geth does and deciding
each request, the HAProxy configuration (checked by Debian's `haproxy -c`), and the
application tokens."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from orchestrator.balancer.haproxy import BalancerSpec, PoolNode, haproxy_config
from orchestrator.balancer.jsonrpc import (
    ALLOWED,
    MAX_BATCH,
    MAX_BODY_BYTES,
    Refusal,
    canonical_json,
    decide,
    parse_body,
)
from orchestrator.balancer.tokens import create_token, token_map
from orchestrator.errors import ConfigError

REFUSED = [
    "eth_sign", "eth_signTransaction", "eth_sendTransaction", "eth_accounts",
    "eth_signTypedData_v4", "personal_sign", "personal_unlockAccount", "admin_peers",
    "admin_addPeer", "debug_traceTransaction", "miner_start", "txpool_content",
    "clique_propose", "clique_getSigners", "eth_newFilter",
]  # fmt: skip


def one(body: str | bytes, *, websocket: bool = False) -> tuple[dict | None, Refusal | None]:  # type: ignore[type-arg]
    parsed = parse_body(body.encode() if isinstance(body, str) else body)
    assert not isinstance(parsed, Refusal), parsed
    (request,), batch = parsed
    assert not batch
    decision = decide(request, websocket=websocket)
    return decision.forward, decision.refusal


@pytest.mark.parametrize("method", REFUSED)
def test_every_method_off_the_allowlist_is_refused(method: str) -> None:
    forward, refusal = one(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}))
    assert forward is None and refusal is not None
    assert (refusal.code, refusal.id) == (-32601, 1)
    assert method in refusal.message


@pytest.mark.parametrize(
    "body",
    [
        '{"id":1,"method":"eth_blockNumber","Method":"eth_sign"}',  # geth: the last wins
        '{"id":1,"method":"eth_blockNumber","METHOD":"eth_sign"}',
        '{"id":1,"method":"eth_blockNumber","method":"eth_sign"}',
        '{"id":1,"method":"eth_blockNumber","m\\u0065thod":"eth_sign"}',  # escaped key
        '{"id":1,"method":"eth_\\u0073ign"}',  # escaped value
        '{"id":1,"method":"eth_blockNumber","meth\\u006fd":"admin_peers"}',
    ],
)
def test_a_method_is_read_as_geth_reads_it(body: str) -> None:
    forward, refusal = one(body)
    assert forward is None and refusal is not None and refusal.code == -32601


def test_an_allowed_request_is_rewritten_canonically() -> None:
    forward, refusal = one(
        '{"Method":"eth_sign","id":9,"METHOD":"eth_getBalance","PARAMS":["0x1"]}'
    )
    assert refusal is None
    assert forward == {"jsonrpc": "2.0", "id": 9, "method": "eth_getBalance", "params": ["0x1"]}
    assert canonical_json(forward) == (
        b'{"jsonrpc":"2.0","id":9,"method":"eth_getBalance","params":["0x1"]}'
    )


def test_a_batch_is_decided_request_by_request() -> None:
    parsed = parse_body(
        b'[{"id":1,"method":"eth_chainId"},{"id":2,"method":"eth_sendTransaction"},'
        b'{"id":3,"method":"eth_sendRawTransaction","params":["0x00"]}]'
    )
    assert not isinstance(parsed, Refusal)
    requests, batch = parsed
    assert batch
    decisions = [decide(r, websocket=False) for r in requests]
    assert [d.forward is not None for d in decisions] == [True, False, True]


def test_limits_on_body_and_batch() -> None:
    too_big = parse_body(b" " * (MAX_BODY_BYTES + 1))
    assert isinstance(too_big, Refusal) and too_big.code == -32600
    batch = json.dumps([{"id": i, "method": "eth_chainId"} for i in range(MAX_BATCH + 1)])
    too_many = parse_body(batch.encode())
    assert isinstance(too_many, Refusal) and "at most" in too_many.message
    assert isinstance(parse_body(b"[]"), Refusal)
    broken = parse_body(b'{"id":1,"method":')
    assert isinstance(broken, Refusal) and broken.code == -32700


def test_subscriptions_only_over_websocket_and_only_heads_and_logs() -> None:
    _, refusal = one('{"id":1,"method":"eth_subscribe","params":["newHeads"]}')
    assert refusal is not None and "WebSocket" in refusal.message
    forward, _ = one('{"id":1,"method":"eth_subscribe","params":["logs",{}]}', websocket=True)
    assert forward is not None
    _, refusal = one(
        '{"id":1,"method":"eth_subscribe","params":["newPendingTransactions"]}', websocket=True
    )
    assert refusal is not None and refusal.code == -32602


def test_reads_and_raw_transactions_are_allowed_and_nothing_that_signs() -> None:
    assert "eth_sendRawTransaction" in ALLOWED and "eth_call" in ALLOWED
    assert not {m for m in ALLOWED if "sign" in m.lower() or m.startswith("personal_")}
    assert "eth_sendTransaction" not in ALLOWED and "eth_accounts" not in ALLOWED


# -- HAProxy's configuration ------------------------------------------------------------


def spec(tmp_path: Path) -> BalancerSpec:
    return BalancerSpec(
        member="bank-a", host="127.0.0.1", port=18645, filter_port=18665, pool_port=18666,
        nodes=[
            PoolNode("bank-a-1", "127.0.0.1", 18545, 18745, 30303, 30403),
            PoolNode("bank-a-2", "127.0.0.1", 18546, 18746, 30304, None),
        ],
        tokens_map=tmp_path / "tokens.map", master_socket=tmp_path / "haproxy.sock",
        max_body_bytes=MAX_BODY_BYTES,
    )  # fmt: skip


def test_the_generated_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is missing: run scripts/setup.sh (Debian package 'haproxy')")
    (tmp_path / "tokens.map").write_text("")
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(spec(tmp_path)))
    out = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_configuration_checks_health_at_the_agents_and_forwards_peers(tmp_path: Path) -> None:
    text = haproxy_config(spec(tmp_path))
    assert "option httpchk GET /health" in text
    assert "server bank-a-1 127.0.0.1:18545 check port 18745 inter 1s fall 2 rise 2" in text
    assert "listen peer-bank-a-1" in text and "bind 127.0.0.1:30403" in text
    assert "peer-bank-a-2" not in text  # no NAT port: not forwarded
    assert "return status 401" in text and "return status 413" in text


# -- tokens ----------------------------------------------------------------------------


def test_a_token_is_owner_only_kept_and_mapped(tmp_path: Path) -> None:
    path = create_token(tmp_path / "tokens", "teller-app")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 40
    assert create_token(tmp_path / "tokens", "teller-app").read_text().strip() == token
    assert token_map(tmp_path / "tokens") == f"{token} teller-app\n"


def test_a_bad_application_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="application name"):
        create_token(tmp_path, "Teller App")
