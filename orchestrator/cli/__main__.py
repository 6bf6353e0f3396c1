"""`python -m orchestrator.cli`: the same `poactl`."""

from orchestrator.cli.main import main

main()
