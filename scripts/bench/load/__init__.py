"""Benchmark (issue 14): batch furnishing and single credit-record writes, reads, RSS, CPU, gas.

Writes go open loop, reads are measured under that load.

Runs the default consortium (orchestrator/consortium.yaml: 2 banks x (2 validators +
1 spare) = 6 agents, 4 Clique signers, period 2 s) on free ports in a new state dir
under /tmp, through the real CLI (`poactl up`, which also deploys the CreditRegistry),
once per run: a configuration x a write mode, each on its own consortium, in the order
default/batch, default/single, baseline/batch, baseline/single. The configurations:

* `default`: the shipped consortium file as it is (its `gas_limit`, which sets the genesis
  gas limit and every node's --miner.gaslimit, and its `tuning` section: geth's cache,
  memory limit, --miner.recommit, txpool); `--override JSON` merges settings into it;
* `baseline`: the same nodes as geth's private-network documentation sets them up:
  30M gas limit, no `tuning` (geth's own defaults).

The write modes, K records per transaction, every record a new tradeline of a new
subject (a pseudonym under the consortium secret), so none is skipped as a repeat:

* `batch`: `furnish(entries)` of K = --batch-records (100) records, each entry subject,
  account reference and the 66-byte packed record (the furnisher is the sender's bank);
* `single`: `report(subject, furnisher, accountRef, record)` of one record, the
  furnisher being the bank's admin account.

Rates are records/s: a step at R records/s sends round(R x seconds / K) transactions (at
least one per bank), transaction i due at i x K / R seconds. Before each timed phase
every transaction is built from the bank's calldata template (the K subjects patched in
at byte offsets computed once and checked against the ABI encoding at start) and signed
(nonces are consecutive: the benchmark is the only writer of each bank's account); the
timed phase only sends them raw (`eth_sendRawTransaction`) to the bank's own node (its
first node, directly: not through the bank's balancer), bank-a and bank-b alternating,
everything due in one JSON-RPC batch per bank every few milliseconds, whatever the chain
does. Record inclusion is the transaction's latency: send -> seen in a block on the
submitting bank's node (its head polled every 50 ms).

The rate steps up (x1.5 from --start-rate-batch or --start-rate-single, up to --max-rate)
until inclusion falls behind, then two bisection steps narrow it down: saturation is the
highest rate at which every transaction was in a block within 3 block periods of the last
send and the p99 latency of the second half of the step was at most 3 periods. Then steps
at 50 %, 70 % and 90 % of saturation are measured, with reads from Bank B's own first
node (directly) at 20/s in a separate process, of one subject with ten tradelines (five
from each of the two banks): the SDK get (block number + eth_getLogs) and one raw JSON-RPC eth_call
(`states` of its 10 tradelines). CPU (machine, geths, generator) per step; RSS (psutil) of
each geth, by the pid in <state>/nodes/<node>/status.json, sampled every second; gas per
record from receipts (gasUsed / K). Prints everything measured, the default / baseline
ratios and the goals of issues 14 and 20 (on the default runs: batch furnishing >= 1,500
records/s, single writes >= 400/s, each >= 3x baseline; at 70 % of saturation inclusion p50 <= 2 s
and p99 <= 3 s, raw eth_call p99 <= 25 ms, SDK get p99 <= 50 ms; <= 300 MB RSS per geth);
`--record` rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python -m scripts.bench.load [--configs default,baseline] [--modes batch,single] \\
        [--batch-records 100] [--override '{"gas_limit": ..., "tuning": {...}}'] [--record]
    .venv/bin/python -m scripts.bench.load --configs default --modes batch,single \\
        --start-rate-single 20 --start-rate-batch 50 --max-rate 60 \\
        --step-seconds 4 --measure-seconds 4      # a smoke run

The modules: `signing` (pre-signed writes: calldata templates, the banks' lanes and
batches), `traffic` (what talks to the nodes during a step: senders, block observers, the
RSS sampler, the reader process), `step` (one step's figures and its progress line),
`run` (one run's consortium and the procedure over it), `report` (the section of
docs/benchmarks.md), `__main__` (the command line, the configurations and modes).
"""
