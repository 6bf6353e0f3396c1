"""One VM's agent: the supervisor of one geth node (`poactl agent`).

`machine` is the agent's explicit state machine and its threads; `status` the typed
records it writes (`agent.json`, `status.json`); `settings` its `agent.yaml`; `paths`
where its files live; `leases` and `fencing` keep a lease and stop sealing before it
can expire; `identity` reads a validator identity from the vault; `sealing` switches
geth's sealing; `node` initialises the chain and builds the supervised geth;
`supervisor` restarts geth with backoff; `peers` keeps its static peers; `endpoint`
serves `/health` and `/metrics`.
"""
