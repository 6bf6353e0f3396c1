"""`poactl`, the command line: each command parses, calls one service, renders.

`main` holds the group and the node commands (up, status, logs, down, destroy, agent);
`credit` and `contracts` the credit-record commands; `common` the one mapping from
errors to exit codes. `python -m orchestrator.cli` runs it too (`local` spawns agents
that way).
"""
