"""A bank that joined after the genesis takes its seats: once the members have admitted
it, its leader adds its own validators and its transaction account as a writer, with
its admin key, as a founder's were at block 0. Clique then follows governance through
the sealing agents' votes (`agent.votes`).

One round per call; the agent calls it from its votes thread while it leads, until it
answers "done". A refusal by the contract (over the cap, an address registered to
another member) is final: it is logged with its rule and not retried.
"""

from __future__ import annotations

import logging

from orchestrator.boundaries import Secret
from orchestrator.errors import ContractRevert
from orchestrator.governance.client import Governance
from orchestrator.network.create import MemberInfo

log = logging.getLogger(__name__)

WAITING, DONE = "waiting", "done"


def take_seats(rpc_url: str, admin_key: Secret, info: MemberInfo) -> str:
    """WAITING while the bank is not a member yet; DONE once its validators and writer are
    registered (or the contract refused them for good)."""
    gov = Governance(rpc_url, admin_key=admin_key)
    if not gov.is_member(info.admin):
        return WAITING
    seated = gov.member(info.admin)
    try:
        missing = [s for s in info.signers if s not in seated.validators]
        if missing:
            gov.add_validators(missing).wait(timeout=60)
            log.info("%s: admitted; added its validators %s", info.member, ", ".join(missing))
        if info.tx_account not in seated.writers:
            gov.add_writers([info.tx_account]).wait(timeout=60)
            log.info("%s: added its writer %s", info.member, info.tx_account)
    except ContractRevert as e:
        log.error("%s: the governance refused to seat it: %s", info.member, e)
    return DONE
