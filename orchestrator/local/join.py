"""`poactl join`: a new bank joins a running network from its own state dir.

From one member's consortium data URL it takes the network (checked: `network.join`),
then makes the bank's own vault, keys, store and publication, writes the network's
genesis and information into its own store (so its agents never wait on the URL), and
starts its agents with `LocalConsortium.up`: they sync as followers, since no block of
theirs counts until the members admit the bank. It publishes its member descriptor at
once, so a member can file the request (`poactl members propose NAME --data URL`).
Without `ports:` in the bank's file it takes base ports that are free on this machine
(the defaults where they are), so it runs beside the network it joins.
Once admitted, the bank's leader seats its validators (`agent.admission`) and Clique
follows the members' votes.

A failed join leaves no state dir behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.config import ConsortiumFile, Member, Ports, load_config, parse_config
from orchestrator.errors import ConfigError, StateError
from orchestrator.local.consortium import UP_TIMEOUT_SECONDS, LocalConsortium, UpResult
from orchestrator.local.ports import free_bases
from orchestrator.network.create import MemberInfo, ensure_member_identities, publish_member
from orchestrator.network.join import JoinSource, fetch_network
from orchestrator.network.names import GENESIS, NETWORK_INFO, admin_key_name
from orchestrator.network.sealed import publish_admin_key
from orchestrator.wiring import open_consortium_data


@dataclass(frozen=True)
class JoinResult:
    source: JoinSource
    member: MemberInfo
    data_url: str  # where this bank publishes; a member proposes it from there
    up: UpResult
    ports: Ports | None = None  # the base ports chosen, when the bank's file gave none


def join(
    local: LocalConsortium,
    *,
    url: str,
    member: str,
    validators: int | None = None,
    config: Path | None = None,
    timeout: float = UP_TIMEOUT_SECONDS,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> JoinResult:
    if local.exists:
        raise StateError(
            "this state dir already holds a consortium",
            obj=str(local.layout.root),
            hint="give a new --state-dir for the joining bank; `poactl up` resumes this one",
        )
    source = fetch_network(open_consortium_data(url), url, joining=member)
    on_progress(
        f"consortium data of {source.member} at {source.url}: chain {source.network.chain_id}, "
        f"members {', '.join(source.network.members)}, genesis "
        f"{source.network.genesis_sha256[:12]}…"
    )
    settings = source.settings_for(_own_settings(member, validators, config))
    chosen = None
    if "ports" not in settings.model_fields_set:  # no ports given: free ones on this machine
        chosen = free_bases(settings)
        settings = settings.model_copy(update={"ports": chosen})
    text = yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True), sort_keys=False)
    consortium = parse_config(text, source=str(config or "<joining bank>"))
    root_existed = local.layout.root.exists()
    local.layout.root.mkdir(parents=True, exist_ok=True)
    try:
        local.create(consortium, joined_from={source.member: url})
        store = local.store(member)
        # The network as checked, in the bank's own store: its agents start from it.
        store.write(GENESIS, source.genesis, if_absent=True)
        store.write(NETWORK_INFO, source.network_info, if_absent=True)
        spec = consortium.settings.members[member]
        info = ensure_member_identities(
            local.vault(member), member, spec.validators, custody=spec.custody
        )
        publish_member(store, info)
        admin_key = local.vault(member).get_secret(admin_key_name(member))
        assert admin_key is not None  # ensure_member_identities made it
        publish_admin_key(store, member, admin_key)
        up = local.up(timeout=timeout, on_progress=on_progress)
    except BaseException:
        if local.exists:
            local.destroy()
        elif local.layout.root.exists() and not root_existed:
            shutil.rmtree(local.layout.root, ignore_errors=True)
        raise
    return JoinResult(source, info, local.data_url(member), up, chosen)


def _own_settings(member: str, validators: int | None, config: Path | None) -> ConsortiumFile:
    """The joining bank's consortium file: its own member entry (and ports, runtime...)."""
    if config is None:
        count = 1 if validators is None else validators
        return ConsortiumFile(members={member: Member(validators=count, spares=0)})
    settings = load_config(config).settings
    if list(settings.members) != [member]:
        raise ConfigError(
            f"a joining bank's consortium file lists only that bank; {config} lists "
            + ", ".join(settings.members),
            obj=str(config),
            hint=f"keep only `members: {{{member}: ...}}` (the others are in the network)",
        )
    if validators is not None:
        members = {member: settings.members[member].model_copy(update={"validators": validators})}
        settings = settings.model_copy(update={"members": members})
    return settings
