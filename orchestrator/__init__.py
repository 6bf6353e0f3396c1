"""poactl: run a bank consortium's Clique network on stock geth.

`cli` parses and renders; `local` runs a consortium on one machine (the composition
root); `bootstrap` creates a new consortium's state; `supervisor` keeps one node alive;
`sealing` decides when a validator seals; `runtime` starts geth; `report`, `health`,
`config`, `keys`, `geth`, `layout`, `proc`, `statefile` and `web3client` each own one
small job. `errors` is the one error tree.
"""

__version__ = "0.1.0"
