"""poactl: run a bank consortium's Clique network on stock geth.

One folder per capability, in layers (each imports only from the layers below it; an
import-linter contract in pyproject.toml keeps it so):

    cli/                the `poactl` commands: parse, call one service, render
    local/              the consortium on one machine (a composition root)
    wiring.py           the composition root of one agent: backends from its settings
    agent/              one VM's agent: state machine, leases, sealing, supervisor, status
    credit/             the credit-record SDK, the registry's deployment, the demo
    network/            names of blobs and secrets, creating the network, peers
    store/ vault/ runtime/   the backends behind the Protocols of `boundaries`
    geth/               argv, IPC client, the one Web3 factory, health probes, keys, pids
    config, boundaries, retry, statefile, logs, errors   what every layer shares
"""

__version__ = "0.1.0"
