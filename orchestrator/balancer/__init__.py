"""Each bank's load balancer: HAProxy in front of the bank's nodes, with poactl's JSON-RPC
filter in between.

`service` runs both (`poactl balancer`); `haproxy` writes HAProxy's configuration;
`filter` serves the filter over HTTP and WebSocket; `jsonrpc` reads a request the way
geth does and decides it; `tokens` keeps the applications' tokens; `settings` is its
`balancer.yaml`. docs/balancer.md explains the choices.
"""
