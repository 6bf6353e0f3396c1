"""The benchmarks; each prints its figures and, with `--record`, rewrites its own section
of docs/benchmarks.md. Run them from the repository root (they start real consortiums of
geth nodes through `.venv/bin/poactl`, on ports that are free at the time):

* `startup`: cold start and warm restart of the default consortium (issue 2).

      .venv/bin/python -m scripts.bench.startup [--trials 5] [--record]

* `failover`: identity and leader failover when an agent's VM dies (issue 3).

      .venv/bin/python -m scripts.bench.failover [--trials 10] [--lease-seconds 15] [--record]

* `load`: credit records under open-loop load, batch furnishing and single writes side by
  side, reads under it, RSS, CPU, gas (issues 5 and 14).

      .venv/bin/python -m scripts.bench.load [--configs tuned,baseline] [--modes ...] [--record]

`common` holds what they share. `--help` lists each benchmark's options.
"""
