"""Pure builders of a Clique genesis: the same spec gives the same bytes on every VM.

No I/O, no clock, nothing of poactl imported. See `genesis.clique`.
"""

from genesis.clique import (
    GAS_LIMIT_MAX,
    GAS_LIMIT_MIN,
    CliqueSpec,
    InvalidGenesisSpec,
    Predeployed,
    build_genesis,
    canonical_json,
    clique_extra_data,
)
from genesis.governance import GOVERNANCE_ADDRESS, Founder, Rules, governance_contract

__all__ = [
    "GAS_LIMIT_MAX",
    "GAS_LIMIT_MIN",
    "GOVERNANCE_ADDRESS",
    "CliqueSpec",
    "Founder",
    "InvalidGenesisSpec",
    "Predeployed",
    "Rules",
    "build_genesis",
    "canonical_json",
    "clique_extra_data",
    "governance_contract",
]
