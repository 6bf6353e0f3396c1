"""Benchmark (issue 20): `poactl credit furnish` of one file through the bank's balancer, and
where its time goes.

For each configuration (`default`: the shipped orchestrator/consortium.yaml as it is;
`baseline`: the same consortium as geth's private-network documentation sets it up, 30M
gas and no `tuning`), on its own consortium on free ports (`poactl up`, which deploys the
CreditRegistry):

1. writes a JSON Lines file of --records new accounts (this module's own generator: random
   portfolio types, amounts, dates and payment histories; identifiers that are not the
   project's test data);
2. runs the real CLI, `poactl credit furnish --bank bank-a --file F --format json`, which
   reaches the chain through bank-a's balancer (its token, the local resolver), and times
   it; then runs it again on the same file (nothing may be sent) and, with --update, on
   next month's file of the same accounts (every record an update);
3. watches every node directly while it runs (WebSocket `newPendingTransactions` and
   `newHeads`), asks Clique who sealed each block, and reads geth's own log for the time it
   took to import or build each block.

It prints where the time went: the CLI's phases (reading and validating, the chain's
state, building, signing, sending, waiting), and for each transaction the time from the
first node that had it pending to the sealer of its block (propagation: a transaction over
4 KB is announced and fetched), the time it then waited in the sealer's pool, blocks (gas
used against the limit, transactions and records per block, geth's import and build
times), reorgs, RSS and CPU. `--record` rewrites this benchmark's section of
docs/benchmarks.md.

    .venv/bin/python -m scripts.bench.furnish --records 300000 --record   # >= 5 minutes
    .venv/bin/python -m scripts.bench.furnish --configs default --records 20000   # quick
"""
