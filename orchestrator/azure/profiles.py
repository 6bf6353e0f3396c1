"""The seed's three cost profiles for one bank's deployment.

The retired template sized a member by its validator VMs (small 2, medium 7, large 15).
In poactl a bank needs at least one VM per agent that competes for its validator
identities (`validators + spares` in the consortium file), so `small` is that minimum
(at least 2), and `medium` and `large` are the seed's counts; a member that needs more
VMs than a profile gives is refused (`params.render`), never silently shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProfileName = Literal["small", "medium", "large"]


@dataclass(frozen=True)
class Profile:
    name: ProfileName
    instances: int | None  # None: exactly what the member needs (at least MIN_INSTANCES)
    vm_size: str
    monitoring: bool  # Log Analytics workspace, Azure Monitor agent, boot diagnostics
    log_retention_days: int


MIN_INSTANCES = 2
PROFILES: dict[str, Profile] = {
    "small": Profile("small", None, "Standard_B2s", monitoring=False, log_retention_days=30),
    "medium": Profile("medium", 7, "Standard_D2s_v5", monitoring=True, log_retention_days=30),
    "large": Profile("large", 15, "Standard_D4s_v5", monitoring=True, log_retention_days=90),
}


def instances_for(profile: Profile, needed: int) -> int:
    """The scale set's size under `profile` for a member that needs `needed` VMs."""
    if profile.instances is None:
        return max(MIN_INSTANCES, needed)
    return profile.instances
