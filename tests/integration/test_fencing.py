"""Agents on Azurite (real Blob leases) and a Key Vault emulator (HTTPS, managed
identity): an agent cut off from storage stops sealing before its lease can expire, a
spare takes the identity over, and no signer ever seals two blocks at one height; a spare
that takes an identity while its bank's vault does not answer gives the lease back,
waits, and seals once the vault answers.

Each agent reaches Azurite through its own cuttable loopback link, so one agent can be
partitioned from storage while the others are not; pausing Azurite cuts them all. Each
bank reaches the vault through a link of its own, too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.config import NodeSpec, StoreSettings, VaultSettings
from orchestrator.local.consortium import LocalConsortium
from tests.helpers.chain import (
    agent,
    assert_no_signer_sealed_twice_at_one_height,
    chain_of,
    head,
    keystore_files,
    kill_agent_and_geth,
    sealed_heights,
)
from tests.helpers.ports import ports_yaml
from tests.helpers.waiting import wait_for
from tests.services.azurite import Azurite, unique_container
from tests.services.keyvault_emulator import KeyVaultService
from tests.services.netcut import CuttableLink

pytestmark = [pytest.mark.geth, pytest.mark.slow]

LEASE = 15
# geth signs a block before Clique's delay, and miner_stop does not cancel the delay: a
# block signed just before a fence appears up to one period (2 s) plus the out-of-turn
# wiggle (0.5 s per signers/2+1 = 1 s for three signers) later. The agent fences early
# enough for that; the tests allow exactly that much.
IN_FLIGHT = 2 + 1.0
VAULT_SILENT = re.compile(r"WARNING .*(vault|validator).*(did not answer|timed out|gave up)", re.I)
IN_FLIGHT_BLOCKS = 2  # blocks the dead holder may have signed before it died


@pytest.fixture
def on_azure(
    geth: str,
    short_dir: Path,
    azurite_factory: Callable[[], Azurite],
    keyvault_emulator: KeyVaultService,
    cuttable_link: type[CuttableLink],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LocalConsortium, Path, Azurite, dict[str, CuttableLink]]]:
    azurite = azurite_factory()
    key_file = short_dir / "account.key"
    key_file.write_text(azurite.credential["account_key"])
    key_file.chmod(0o600)
    container = unique_container("fence")
    keyvault_emulator.use_identity(monkeypatch)  # the agents inherit it: managed identity
    links: dict[str, CuttableLink] = {}
    port = int(azurite.account_url.split(":")[2].split("/")[0])

    def store_via_link(node: NodeSpec) -> StoreSettings:
        links[node.name] = cuttable_link(port)
        return StoreSettings(
            kind="azure",
            account_url=f"http://127.0.0.1:{links[node.name].port}/devstoreaccount1",
            container=f"{container}-{node.member}",  # each bank its own store
            account_key_file=key_file,
        )

    vault_port = int(keyvault_emulator.vault_url.rsplit(":", 1)[1])

    def vault_via_link(member: str) -> VaultSettings:
        """Each bank's vault through a link of its own (`links["vault-<member>"]`)."""
        link = links.setdefault(f"vault-{member}", cuttable_link(vault_port))
        return VaultSettings(
            kind="azure",
            url=f"https://127.0.0.1:{link.port}",
            ca_file=Path(str(keyvault_emulator.connection_verify)),
            verify_challenge_resource=False,
        )

    local = LocalConsortium(
        short_dir / "state",
        geth=geth,
        store=lambda member: StoreSettings(
            kind="azure",
            account_url=azurite.account_url,
            container=f"{container}-{member}",
            account_key_file=key_file,
        ),
        agent_store=store_via_link,
        vault=vault_via_link,
    )
    config = short_dir / "consortium.yaml"
    config.write_text(
        f"{ports_yaml(5)}\n"
        "members:\n"
        "  bank-a: {validators: 1, spares: 1}\n"
        "  bank-b: {validators: 2, spares: 0}\n"
        f"supervision: {{lease_seconds: {LEASE}}}\n"
    )
    try:
        yield local, config, azurite, links
    finally:
        azurite.resume()
        for link in links.values():
            link.restore()
        if local.exists:
            local.down()


def test_a_cut_off_holder_fences_before_expiry_and_a_spare_takes_over(
    on_azure: tuple[LocalConsortium, Path, Azurite, dict[str, CuttableLink]],
) -> None:
    local, config, azurite, links = on_azure
    local.up(config, timeout=120)
    holders = local.signers()
    holder = next(n for n in holders if n.startswith("bank-a-"))
    spare = next(n for n in ("bank-a-1", "bank-a-2") if n != holder)
    signer = holders[holder].lower()
    assert agent(local, spare)["state"] == "FOLLOWING"
    assert agent(local, holder)["leader"] or agent(local, spare)["leader"]

    # 1. Partition the holder from storage: it fences before its lease can expire.
    links[holder].cut()
    cut_at = time.time()
    wait_for(lambda: agent(local, holder)["state"] == "FENCED", LEASE, "the holder to fence")
    fence = agent(local, holder)["last_fence"]
    assert isinstance(fence, dict)
    assert fence["lease"] == "leases/bank-a/identity-0"
    assert cut_at < fence["at"] < fence["lease_expires_by"] - 3, fence
    assert keystore_files(local, holder) == []

    # 2. The spare takes the identity once the lease expired, and seals with it.
    def spare_sealed() -> bool:
        status = agent(local, spare)
        if status["state"] != "SEALING":
            return False
        chain = chain_of(local, spare)
        return any(s == signer and n > head_at_cut for n, (s, _) in chain.items())

    head_at_cut = head(local, spare)
    took = wait_for(spare_sealed, LEASE + 10, "the spare to seal with the identity")
    assert time.time() - cut_at <= LEASE + 10, took
    assert sealed_heights(local.layout.node(holder).geth_log, fence["at"] + IN_FLIGHT) == set()

    # 3. Storage back: the old holder finds every identity held and follows.
    links[holder].restore()
    wait_for(lambda: agent(local, holder)["state"] == "FOLLOWING", 20, "the old holder to follow")
    assert_no_signer_sealed_twice_at_one_height(local)

    # 4. All storage gone: every sealing agent fences in time, and the chain stops.
    sealing = [n for n, s in local.signers().items()]
    azurite.pause()
    paused_at = time.time()
    wait_for(
        lambda: all(agent(local, n)["state"] == "FENCED" for n in sealing),
        LEASE,
        "every sealing agent to fence",
    )
    for n in sealing:
        fence = agent(local, n)["last_fence"]
        assert isinstance(fence, dict) and paused_at < fence["at"] < fence["lease_expires_by"]
    time.sleep(IN_FLIGHT + 1)
    stopped_at = head(local, spare)
    time.sleep(6)
    assert head(local, spare) == stopped_at, "blocks were sealed while every agent was fenced"
    for n in sealing:
        fenced_at = agent(local, n)["last_fence"]["at"]  # type: ignore[index]
        assert sealed_heights(local.layout.node(n).geth_log, fenced_at + IN_FLIGHT) == set()

    # 5. Storage back: the identities are taken again and the chain moves on.
    azurite.resume()
    wait_for(lambda: head(local, spare) > stopped_at + 2, LEASE + 20, "the chain to move again")
    assert_no_signer_sealed_twice_at_one_height(local)


def test_the_vault_unreachable_while_an_identity_changes_hands(
    on_azure: tuple[LocalConsortium, Path, Azurite, dict[str, CuttableLink]],
) -> None:
    """Issue 18's scenario: the holder's VM dies while its bank's vault does not answer.
    The spare takes the lease, cannot read the key, gives the lease back and says why;
    nobody signs with the identity meanwhile (and nobody twice); once the vault answers
    the spare seals with it."""
    local, config, _azurite, links = on_azure
    local.up(config, timeout=120)
    holders = local.signers()
    holder = next(n for n in holders if n.startswith("bank-a-"))
    spare = next(n for n in ("bank-a-1", "bank-a-2") if n != holder)
    signer = holders[holder].lower()

    links["vault-bank-a"].cut()
    killed_at = kill_agent_and_geth(local, holder)
    head_at_kill = head(local, spare)

    def sealed_with_identity_since(height: int) -> bool:
        return any(s == signer and n > height for n, (s, _) in chain_of(local, spare).items())

    # The lease expires (LEASE), the spare takes it and fails to read the key: it logs
    # that the vault does not answer, gives the lease back, and the identity seals nowhere
    # while the vault is unreachable.
    log = local.layout.node(spare).agent_log
    wait_for(
        lambda: VAULT_SILENT.search(log.read_text()) is not None,
        LEASE + 60,
        "the spare to log that the vault does not answer",
    )
    assert agent(local, spare)["state"] == "FOLLOWING", agent(local, spare)
    assert not sealed_with_identity_since(head_at_kill + IN_FLIGHT_BLOCKS)
    assert time.time() - killed_at >= LEASE - 1  # not before the holder's lease ran out

    # The vault answers again: the spare takes the identity and seals with it.
    links["vault-bank-a"].restore()
    restored_head = head(local, spare)
    wait_for(
        lambda: (
            agent(local, spare)["state"] == "SEALING" and sealed_with_identity_since(restored_head)
        ),
        LEASE + 45,
        "the spare to seal with the identity once the vault answers",
    )
    assert_no_signer_sealed_twice_at_one_height(local)
