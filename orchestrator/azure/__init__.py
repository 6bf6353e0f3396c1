"""One bank's Azure deployment as code, and what renders its parameters.

    template.py    the ARM template (infra/azure/poactl-bank.json), a pure function:
                   network.py (VNet, NSG, NAT gateway, load balancers), platform.py
                   (identity, storage, Key Vault, role assignments), compute.py (the
                   scale set, its boot and health), monitoring.py (Log Analytics)
    cloudinit.py   the scale set's custom data: a #cloud-config that runs boot.py
    boot.py        what each VM runs at first boot (standard library only)
    params.py      `poactl azure params`: a parameter file from the consortium file
    profiles.py    the small / medium / large cost profiles
    roles.py       the built-in role definitions the scale set's identity gets

Everything here is pure: the same inputs give the same bytes, and nothing calls Azure.
What the agents expect (ports, container names, install_agent.sh's options) comes from
`orchestrator.config` and is checked against the code by `tests/azure/`.
"""
