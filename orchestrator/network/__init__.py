"""The network a consortium shares: names of its blobs and secrets (`names`), creating
it — identities, genesis, network information (`create`) — and peers (`peers`).

Services of the agent and of `local`; they see the store and vault only through the
Protocols of `orchestrator.boundaries`.
"""
