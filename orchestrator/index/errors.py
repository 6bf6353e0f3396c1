"""The read index's errors, under poactl's one tree (`PoaError`)."""

from __future__ import annotations

from orchestrator.credit.errors import CreditError


class LogRefused(CreditError):
    """A registry log that does not match the state word logged with it (or the one
    before it): the index keeps nothing of its block and says which log and why."""
