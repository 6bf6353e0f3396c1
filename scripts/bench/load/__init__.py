"""Benchmark: credit-record writes under open-loop load, reads under that load, RSS, gas.

Runs the default consortium (orchestrator/consortium.yaml: 2 banks x (2 validators +
1 spare) = 6 agents, 4 Clique signers, period 2 s) on free ports in a new state dir
under /tmp, through the real CLI (`poactl up`, which also deploys the CreditRegistry),
once per configuration:

* `tuned`: the default consortium with a larger block gas limit (`gas_limit` in the
  consortium file, which sets the genesis gas limit and every node's --miner.gaslimit)
  and the file's `tuning` section (--tuning: geth's cache, --miner.recommit, txpool);
* `baseline`: the same nodes as geth's private-network documentation sets them up:
  30M gas limit, geth's default txpool (which is also the shipped default file).

Writes are `report` transactions of the CreditRegistry, each creating a new tradeline
for a new subject (a pseudonym under the consortium secret), signed locally with each
bank's transaction key from its vault and sent raw (`eth_sendRawTransaction`) to the
bank's own node (its first node), bank-a and bank-b alternating. Before each timed
phase every transaction is encoded and signed (nonces are consecutive: the benchmark is
the only writer of each bank's account); the timed phase only sends them, open loop:
transaction i is due at i / rate seconds and everything due is sent in one JSON-RPC
batch per bank every few milliseconds, whatever the chain does. Inclusion is the moment
the submitting bank's node shows the transaction in a block (its head polled every
50 ms): latency is send -> seen in a block there.

The rate steps up (x1.5 from --start-rate) until inclusion falls behind, then two
bisection steps narrow it down: saturation is the highest rate at which every write
was in a block within 3 block periods of the last send and the p99 latency of the
second half of the step was at most 3 periods. Then steps at 50 %, 70 % and 90 % of
saturation are measured, with Bank B's SDK `get` of one subject (three tradelines from
both banks) from its own node at 20 reads/s in a separate process. RSS (psutil) of each
geth, by the pid in <state>/nodes/<node>/status.json, is sampled every second; gas per
write comes from receipts. Prints everything measured; `--record` rewrites this
benchmark's section of docs/benchmarks.md. Goals (issue 5): >= 1,000 writes/s sustained,
p99 <= 2.5 s at 70 %, reads p99 <= 10 ms, <= 300 MB RSS per node.

    .venv/bin/python -m scripts.bench.load [--gas-limit 500000000] [--tuning '{...}'] [--record]
    .venv/bin/python -m scripts.bench.load --configs tuned --start-rate 10 --max-rate 20 \\
        --step-seconds 4 --measure-seconds 4      # a smoke run

The modules: `signing` (pre-signed writes: the banks' lanes and batches), `traffic` (what
talks to the nodes during a step: senders, block observers, the RSS sampler, the reader
process), `step` (one step's figures and its progress line), `run` (one configuration's
consortium and the procedure over it), `report` (the section of docs/benchmarks.md),
`__main__` (the command line and the configurations).
"""
