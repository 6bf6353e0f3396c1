"""Benchmark (issue 20): credit reads from a bank's read index as the chain grows.

Runs the default consortium (the shipped orchestrator/consortium.yaml, on free ports)
through the real CLI (`poactl up`, which deploys the registry and starts one read index
per bank) and, for each size in --sizes (records on chain, ascending):

1. **fill** the chain up to that many records with real `furnish` transactions of
   --batch-records new records each (new subjects, so every record is a new tradeline),
   pre-signed by each bank's writer account and sent raw to its own first node, both
   banks at once, at most --window transactions in flight per bank (as fast as the chain
   takes them); then wait until bank B's index holds the node's head (its catch-up);
2. **idle reads**: bank B's SDK `get` of one subject with ten tradelines (five from each
   bank, written first) from its read index, --read-rate a second for --idle-seconds, in
   a separate process; the same `get` from the node (no index) at a fifth of the rate;
3. **reads under load**: the same reads while both banks furnish open loop at
   --load-share % of the saturation (--saturation records/s; default: the block gas limit's
   ceiling, gas_limit / (30,000 gas a record x period)), for --load-seconds; meanwhile the
   index's lag is sampled every 100 ms: bank B's node head minus the block its index holds;
4. **rebuild**: `poactl index --rebuild` of bank B's index, timed (a rebuild from the chain).

Prints each size's figures, the ratio of the largest size's read p99 to the smallest's
(goal <= 1.2), the read p99 under load (goal <= 20 ms) and the lag under load (goal <= 1
block); `--record` rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python -m scripts.bench.reads --sizes 10000,100000 [--record]
    .venv/bin/python -m scripts.bench.reads --sizes 10000,1000000 --record   # the lead's run

The modules: `fill` (filling the chain), `probes` (the reader process and the lag
sampler), `__main__` (the procedure, the command line and the report).
"""
