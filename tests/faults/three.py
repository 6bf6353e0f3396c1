"""A third bank joins the lab's two-bank consortium the way a bank does (`poactl join`'s
code, run from its own application host, against bank-a's consortium data URL across
the WAN); bank-a proposes it and bank-b approves, through their own balancers; its
validators are seated and seal. Then: one bank of three cut from the other two, where 4
of 6 signers keep sealing.
"""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.config import parse_config
from orchestrator.governance import Governance
from orchestrator.lab import netns
from orchestrator.lab.consortium import LabConsortium
from orchestrator.local import balancers
from orchestrator.local.governance import read_joining_member
from orchestrator.local.join import join
from orchestrator.network.data import directory_entry
from orchestrator.network.names import admin_key_name, directory_blob
from tests.faults.harness import FaultLab, wait
from tests.faults.sizes import Sizes
from tests.faults.verdict import Outcome, Trial, judge

JOINER = "bank-c"
GAS_MONEY_WEI = 10**20
JOINER_FILE = f"""members:
  {JOINER}: {{validators: 2, spares: 0}}
balancer: {{peering: true}}
"""


def governance(c: LabConsortium, bank: str) -> Governance:
    key = c.vault(bank).get_secret(admin_key_name(bank))
    return Governance(
        c.balancer_url(bank), admin_key=key, rpc_token=balancers.token(c.layout, bank)
    )


def join_third_bank(fl: FaultLab) -> None:
    """bank-c joins, is admitted, and its two validators seal."""
    lab, founders = fl.lab, fl.founders
    config = lab.dir.root / f"{JOINER}.yaml"
    config.write_text(JOINER_FILE)
    spec = parse_config(JOINER_FILE, source=str(config))
    joiner = lab.add_bank(JOINER, [n.name for n in spec.nodes])
    lab.link_bank(JOINER, [])  # its store now; its peering ports once join has chosen them
    url_a = founders.data_url("bank-a")
    with netns.inside(lab.plan.bank(JOINER).app.ns):
        result = join(joiner, url=url_a, member=JOINER, config=config, timeout=300,
                      on_progress=lambda _line: None)  # fmt: skip
    lab.link_bank(JOINER, [n.peer_port for n in joiner.load().nodes])  # ports join chose
    url_c = result.data_url
    with netns.inside(lab.plan.bank("bank-a").app.ns):
        info = read_joining_member(url_c, JOINER)
        gov_a = governance(founders, "bank-a")
        gov_a.propose_add(info.admin, JOINER).wait(timeout=120)
        founders.record_proposed_data(JOINER, url_c)
        founders.store("bank-a").write(directory_blob("bank-a", JOINER),
                                       directory_entry(JOINER, url_c))  # fmt: skip
        for account in (info.admin, info.tx_account):
            gov_a.fund(account, GAS_MONEY_WEI).wait(timeout=120)
    with netns.inside(lab.plan.bank("bank-b").app.ns):
        gov_b = governance(founders, "bank-b")
        proposal = next(p for p in gov_b.proposals(open_only=True) if p.name == JOINER)
        gov_b.vote(proposal.id, approve=True).wait(timeout=120)
    signers = set(info.signers)
    wait(lambda: signers <= {b.signer for b in fl.checker.blocks()}, 300,
         f"{JOINER}'s validators to seal")  # fmt: skip
    fl.checker.add_nodes(fl.ipc_paths())
    if fl.load is not None:
        fl.load.stop()
    fl.load = fl.make_load(rate=fl.load.clients[0].rate if fl.load else 2.0).start()
    fl.wait_healthy(timeout=300)


def partition_third(fl: FaultLab, size: Sizes) -> Outcome:
    """One bank of three (bank-c) cut from the other two: 4 of 6 signers keep sealing."""
    since = time.monotonic()
    done = []
    for _ in range(size.partition_three):
        fl.wait_healthy()
        t = Trial(time.monotonic())
        for other in ("bank-a", "bank-b"):
            fl.lab.cut_banks(JOINER, other)
        t.stall_s = fl.stalled_since(t.t_fault, timeout=size.partition_seconds)
        time.sleep(max(0.0, size.partition_seconds - (time.monotonic() - t.t_fault)))
        fl.lab.heal()
        t.t_heal = time.monotonic()
        t.resume_s = fl.first_block_after(t.t_heal, timeout=180)
        t.at_head_s = fl.all_at_head_after(t.t_heal, timeout=180)
        t.t_end = time.monotonic()
        done.append(t)
    return judge(fl, "partition 4 | 2 (one bank of three)", done, since=since)


def joined_dir(fl: FaultLab) -> Path:
    return fl.lab.dir.joined(JOINER)
