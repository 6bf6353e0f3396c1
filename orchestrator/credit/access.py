"""What a bank's credit client needs to reach the registry, and who can say so.

`BankAccess` is one bank's endpoint, registry address and keys; a `BankResolver` (the
local consortium's, or the one built from the store's network information in
`credit.deployment`) answers it for a bank's name. The CLI, the demo and the
deployment share these types, so none of them depends on another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.boundaries import Secret


@dataclass(frozen=True)
class BankAccess:
    """What one bank's client needs."""

    rpc_url: str
    registry: str
    account_key: Secret
    pseudonym_secret: Secret
    names: Mapping[str, str] = field(default_factory=dict)  # address -> bank name (display)
    rpc_token: Secret | None = None  # the application's token for its bank's balancer
    registry_block: int = 0  # the registry's deployment block: its logs start there
    account_ref_key: Secret | None = None  # the bank's own key for account references
    index_url: str | None = None  # the bank's read index (`poactl index`): reads go there first


class BankResolver(Protocol):
    def resolve(self, bank: str) -> BankAccess:
        """The endpoint, registry and keys of `bank`; ConfigError if it cannot tell."""
