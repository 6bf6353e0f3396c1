"""The network lab: the consortium with every node in its own network namespace, banks on
their own subnets joined by a router, Toxiproxy on the links between banks and iptables
rules to cut them (`poactl lab`, and the fault suite in tests/faults/). Needs root."""
