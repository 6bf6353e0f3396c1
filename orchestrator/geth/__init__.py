"""Everything about one stock geth 1.13.15, and nothing about consortia.

`command` builds its argv and config.toml as pure data and finds the pinned binary;
`ipc` is the JSON-RPC client over its unix socket; `client` is the one place that
builds a `Web3` (with Clique's extraData middleware); `health` probes a node; `keys`
writes node keys and keystores; `proc` finds and stops processes by pid.
"""
