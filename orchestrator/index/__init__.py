"""A bank's read index of the credit registry: the registry's logs in a database beside
the bank's nodes, so that reading a subject's tradelines costs the same with ten thousand
or a million records on chain.

`follower` fills it by following the bank's own node (new blocks and reorgs: every kept
block's hash is checked against its child's parent, and a mismatch rolls the index back
to the last block both agree on), `checks` refuses a log whose record does not match the
state word logged with it, `store` is the interface a database implements (`sqlite` is the
embedded default; a server database is another implementation of the same Protocol),
`server` answers reads over HTTP (the subject's logs, exactly as `eth_getLogs` gives
them, with how far the index is behind the node's head), `service` runs it all as
`poactl index`. The SDK reads it through `orchestrator.credit.indexed`.
"""
