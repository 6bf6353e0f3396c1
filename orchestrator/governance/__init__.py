"""The consortium's governance on chain: who the members are, who validates and writes.

The Governance contract (`contracts/Governance.sol`) lives at `GOVERNANCE_ADDRESS` from
block 0: `genesis.governance` writes its code and founding state into the genesis.
`client.Governance` reads it (members, validators, proposals and ballots) and sends an
admin's transactions (propose, vote, withdraw, a member's own validators and writers);
every refusal comes back as a `ContractRevert` that names the rule and the fix. See
docs/governance.md.
"""

from genesis.governance import GOVERNANCE_ADDRESS
from orchestrator.governance.client import Governance, MemberView, ProposalView

__all__ = ["GOVERNANCE_ADDRESS", "Governance", "MemberView", "ProposalView"]
