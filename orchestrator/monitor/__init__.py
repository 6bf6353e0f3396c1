"""Each bank's monitor: node heartbeats over 30 minutes, transactions per minute,
members and validators, forks and alerts — a web page, a JSON API and Prometheus.

`service` runs it (`poactl monitor`); `history` remembers heartbeats, blocks and reorgs
in SQLite; `chain` follows the chain from the bank's node; `view` computes what is
shown; `metrics` renders it for Prometheus; `server` serves the page; `settings` is its
`monitor.yaml`. `prometheus.yml`, `alerts.rules.yml` and `grafana-dashboard.json` are
the production set-up (docs/monitoring.md).
"""
