"""poactl: run a bank consortium's Clique network on stock geth.

`cli` parses and renders; `local` runs a consortium on one machine; `supervisor`
keeps one node alive; `runtime` starts geth; `config`, `keys`, `geth`, `health`,
`web3client` and `statefile` each own one small job.
"""

__version__ = "0.1.0"
