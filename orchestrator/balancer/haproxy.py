"""A bank's HAProxy configuration, as pure data from the bank's nodes and ports.

    frontend rpc          the bank's JSON-RPC endpoint (HTTP and WebSocket): an
                          application presents `Authorization: Bearer <token>`, looked up
                          in the token map (401 otherwise); bodies over the limit get 413;
                          everything goes to the JSON-RPC filter
    backend filter        poactl's filter (`balancer.filter`), which reads each request
                          as geth will and forwards only allowed, re-written ones to ...
    frontend pool         ... the bank's node pool, on loopback only
    backend nodes         the bank's nodes, round robin; a node is in rotation while its
                          agent's /health answers 200 (checked every second, out after
                          two failures, back after two successes); a node that takes
                          longer than `node_timeout` to answer (it went dark, froze or
                          stalls) gets the request sent to another one: the filter only
                          forwards requests that can be replayed (reads, and raw
                          transactions, which a node knows by their hash)
    listen peer-<node>    one TCP port per node on the balancer's address, forwarded to
                          that node's p2p port (like an Azure Load Balancer NAT rule); the
                          enodes the bank publishes point there

Runs in master-worker mode with the master CLI on a unix socket, so `reload` (SIGUSR2)
starts new workers with the new file while the old ones finish their connections. The
old workers keep their idle keep-alive connections until the next request, which they
answer with `Connection: close` (`idle-close-on-response`): closing them at once, the
default since HAProxy 2.4, fails a request a client writes onto one as it closes. The
pool's frontend keeps that default: its one client, the filter, sends such a request
again, and a stop then need not wait for the filter's idle connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

JSON = "content-type application/json"


@dataclass(frozen=True)
class PoolNode:
    name: str
    host: str
    http_port: int  # geth's JSON-RPC (HTTP and WebSocket on one port)
    health_port: int  # its agent's /health
    p2p_port: int
    peer_port: int | None = None  # where the balancer forwards peers to it (None: no NAT)


@dataclass(frozen=True)
class BalancerSpec:
    member: str
    host: str  # the balancer's address: RPC and peering listen here
    port: int  # the bank's JSON-RPC endpoint
    filter_port: int  # poactl's filter, on loopback
    pool_port: int  # the node pool, on loopback
    nodes: Sequence[PoolNode]
    tokens_map: Path  # "<token> <application>" per line (relative: to the configuration)
    master_socket: Path
    max_body_bytes: int
    node_timeout: float = 3.0  # seconds a node may take to answer before another is asked


def haproxy_config(spec: BalancerSpec) -> str:
    unauthorized = (
        '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"unauthorized: '
        'present your application token as Authorization: Bearer <token>"}}'
    )
    too_large = (
        '{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body too large"}}'
    )
    lines = [
        f"# poactl: the load balancer of {spec.member} (generated; poactl rewrites it)",
        "global",
        "    master-worker",
        "    default-path config",  # relative paths (the tokens map) beside this file
        f"    stats socket {spec.master_socket}.stats mode 600 level admin expose-fd listeners",
        "    maxconn 4096",
        "    log stderr format short local0 notice",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout tunnel 1h",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    option idle-close-on-response",  # a reload answers the next request, then closes
        "    retry-on conn-failure empty-response 503",
        "    retries 2",
        "    option redispatch",
        "",
        "frontend rpc",
        f"    bind {spec.host}:{spec.port}",
        "    http-request set-var(txn.token) req.hdr(authorization),regsub(^Bearer\\ +,)",
        f"    http-request set-var(txn.app) var(txn.token),map_str({spec.tokens_map})",
        f"    http-request return status 401 {JSON} string '{unauthorized}' unless {{ var(txn.app) -m found }}",  # noqa: E501
        f"    http-request return status 413 {JSON} string '{too_large}' if {{ req.body_size gt {spec.max_body_bytes} }}",  # noqa: E501
        "    http-request del-header authorization",
        "    http-request set-header X-Poactl-App %[var(txn.app)]",
        "    default_backend filter",
        "",
        "backend filter",
        f"    server filter 127.0.0.1:{spec.filter_port}",
        "",
        "frontend pool",
        f"    bind 127.0.0.1:{spec.pool_port}",
        "    no option idle-close-on-response",  # the filter resends; a stop need not wait
        "    default_backend nodes",
        "",
        "backend nodes",
        "    balance roundrobin",
        f"    timeout server {int(spec.node_timeout * 1000)}ms",
        "    retry-on conn-failure empty-response response-timeout 503",
        "    option redispatch 1",  # every retry to another node, not the one that failed
        "    option http-buffer-request",  # the whole request in hand: it can be sent again
        "    option httpchk GET /health",
        "    http-check expect status 200",
    ]
    lines += [
        f"    server {n.name} {n.host}:{n.http_port} check port {n.health_port} "
        "inter 1s fall 2 rise 2"
        for n in spec.nodes
    ]
    for n in spec.nodes:
        if n.peer_port is None:
            continue
        lines += [
            "",
            f"listen peer-{n.name}",
            "    mode tcp",
            "    option tcplog",
            f"    bind {spec.host}:{n.peer_port}",
            f"    server {n.name} {n.host}:{n.p2p_port}",
        ]
    return "\n".join(lines) + "\n"
