"""A consortium on one machine (`poactl up`), run by the same agents as on VMs.

A composition root: `consortium` creates the state dir and starts, stops and destroys
the agents; `readiness` waits until the network seals; `report` is what `poactl
status` shows; `registry` wires the credit registry to the local banks; `layout` and
`ports` are where things live on this machine.
"""
