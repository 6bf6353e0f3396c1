"""A third bank joins a running two-bank consortium from its own state dir, on real geth
1.13.15: it syncs as a follower from bank-a's published consortium data, bank-a
proposes it, bank-b approves (two members: both must), its leader seats its validator,
Clique's signers vote it in, and it seals; bank-a seals the pseudonym secret to it, and
a credit record bank-c writes is read by bank-b from its own node. Bad `--from` data
changes nothing on disk.

Tests run in file order on one founding consortium.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import main
from orchestrator.credit import CreditClient
from orchestrator.geth.ipc import ipc_request
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.governance import bank_governance
from orchestrator.local.registry import deploy_local, local_resolver
from orchestrator.network.names import PSEUDONYM_SECRET_NAME
from tests.credit.conftest import record
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import consortium_yaml, ports_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]


@pytest.fixture(scope="module")
def founders(geth: str) -> Iterator[LocalConsortium]:
    with running_consortium(geth, consortium_yaml({"bank-a": 1, "bank-b": 1})) as local:
        deploy_local(local)  # the CreditRegistry, recorded in bank-a's consortium data
        yield local


@pytest.fixture(scope="module")
def joiner_dir(founders: LocalConsortium) -> Iterator[Path]:
    root = founders.layout.root.parent / "bank-c"
    root.mkdir()
    (root / "consortium.yaml").write_text(
        f"{ports_yaml(2)}\nmembers:\n  bank-c: {{validators: 1, spares: 0}}\n"
    )
    yield root
    joined = LocalConsortium(root / "s")
    if joined.exists:
        joined.down()


def poactl(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def join(founders: LocalConsortium, root: Path, url: str, *extra: str) -> Result:
    return poactl(
        "join", "--from", url, "--member", "bank-c", "--state-dir", str(root / "s"),
        "--config", str(root / "consortium.yaml"), "--geth", str(founders._geth), *extra,
    )  # fmt: skip


def test_join_refuses_data_that_is_not_the_networks(
    founders: LocalConsortium, joiner_dir: Path, tmp_path: Path
) -> None:
    state = joiner_dir / "s"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = join(founders, joiner_dir, empty.as_uri())
    assert result.exit_code != 0 and "holds no consortium data" in result.output, result.output
    assert not state.exists()

    tampered = tmp_path / "tampered"
    shutil.copytree(founders.layout.published("bank-a"), tampered)
    genesis = tampered / "network" / "genesis.json"
    doc = json.loads(genesis.read_text())
    doc["extraData"] = doc["extraData"][:-2] + "00"  # one byte of the signer list
    genesis.write_text(json.dumps(doc))
    result = join(founders, joiner_dir, tampered.as_uri())
    assert result.exit_code != 0 and "does not match the network information" in result.output
    assert "tampered" in result.output and not state.exists()

    other_chain = joiner_dir / "other-chain.yaml"
    other_chain.write_text("chain_id: 9999\n" + (joiner_dir / "consortium.yaml").read_text())
    result = poactl(
        "join", "--from", founders.data_url("bank-a"), "--member", "bank-c",
        "--state-dir", str(state), "--config", str(other_chain),
    )  # fmt: skip
    assert result.exit_code != 0 and "chain_id 7272" in result.output
    assert "this is another chain" in result.output and not state.exists()

    taken = poactl(
        "join", "--from", founders.data_url("bank-a"), "--member", "bank-b",
        "--state-dir", str(state),
    )  # fmt: skip
    assert taken.exit_code != 0 and "'bank-b' is already a member" in taken.output
    assert not state.exists()


def test_a_new_bank_syncs_as_a_follower_and_publishes(
    founders: LocalConsortium, joiner_dir: Path
) -> None:
    result = join(founders, joiner_dir, founders.data_url("bank-a"))
    assert result.exit_code == 0, result.output
    joined = LocalConsortium(joiner_dir / "s")
    assert "bank-c follows the chain" in result.output
    assert f"publishes its consortium data at {joined.data_url('bank-c')}" in result.output
    status = poactl("status", "--format", "json", "--state-dir", str(joiner_dir / "s"))
    leases = {(r["member"], r["lease"]): r["holder"] for r in json.loads(status.output)["leases"]}
    assert leases[("bank-c", "identity-0")] == "bank-c-1", status.output
    descriptor = joined.layout.published("bank-c") / "members" / "bank-c.json"
    assert json.loads(descriptor.read_text())["member"] == "bank-c"
    # Its node is on the founders' chain: the same block hashes.
    a_ipc, c_ipc = founders.layout.node("bank-a-1").ipc, joined.layout.node("bank-c-1").ipc
    c_head = int(ipc_request(c_ipc, "eth_blockNumber"), 16)
    assert c_head > 0
    block = [hex(c_head), False]
    same = ipc_request(a_ipc, "eth_getBlockByNumber", block)["hash"]
    assert ipc_request(c_ipc, "eth_getBlockByNumber", block)["hash"] == same
    assert (
        ipc_request(c_ipc, "eth_getBlockByNumber", ["0x0", False])["hash"]
        == (ipc_request(a_ipc, "eth_getBlockByNumber", ["0x0", False])["hash"])
    )


def test_admitted_by_both_members_its_validator_seals(
    founders: LocalConsortium, joiner_dir: Path
) -> None:
    joined = LocalConsortium(joiner_dir / "s")
    state = str(founders.layout.root)
    url = joined.data_url("bank-c")
    proposed = poactl("members", "propose", "bank-c", "--data", url, "--as", "bank-a",
                      "--state-dir", state)  # fmt: skip
    assert proposed.exit_code == 0, proposed.output
    assert "add bank-c" in proposed.output and "open, for 1 (2 decide)" in proposed.output
    gov_b = bank_governance(founders, "bank-b")
    wait_for(lambda: any(p.name == "bank-c" for p in gov_b.proposals(open_only=True)), 20,
             "bank-b's node to show the proposal")  # fmt: skip
    approved = poactl("members", "vote", "bank-c", "--approve", "--as", "bank-b",
                      "--state-dir", state)  # fmt: skip
    assert approved.exit_code == 0, approved.output
    assert "approved; 3 members now" in approved.output, approved.output
    decided = time.monotonic()
    signer = json.loads((joined.layout.published("bank-c") / "members" / "bank-c.json")
                        .read_text())["signers"][0]  # fmt: skip
    wait_for(lambda: signer in gov_b.validators(), 60, "bank-c's leader to seat its validator")
    a_ipc = founders.layout.node("bank-a-1").ipc

    def sealed_by_c() -> bool:
        head = int(ipc_request(a_ipc, "eth_blockNumber"), 16)
        return any(
            str(ipc_request(a_ipc, "clique_getSigner", [hex(n)])).lower() == signer.lower()
            for n in range(max(1, head - 3), head + 1)
        )

    wait_for(sealed_by_c, 90, "a block sealed by bank-c's validator")
    print(f"from the approving vote to bank-c's first sealed block: "
          f"{time.monotonic() - decided:.1f} s")  # fmt: skip
    # The founders' agents, started before bank-c joined, find its data in bank-a's
    # directory and peer with its node.
    enode = json.loads((joined.layout.published("bank-c") / "enodes" / "bank-c" / "bank-c-1.json")
                       .read_text())["enode"]  # fmt: skip
    node_id = enode.split("@")[0].removeprefix("enode://")
    b_ipc = founders.layout.node("bank-b-1").ipc
    wait_for(lambda: any(p["id"] == node_id or node_id in p.get("enode", "")
                         for p in ipc_request(b_ipc, "admin_peers")), 60,
             "bank-b's node to peer with bank-c's")  # fmt: skip
    members = poactl("members", "--format", "json", "--state-dir", state)
    report = json.loads(members.output)
    assert [m["name"] for m in report["members"]] == ["bank-a", "bank-b", "bank-c"]
    (c,) = [m for m in report["members"] if m["name"] == "bank-c"]
    assert c["data_url"] == url and [v["address"] for v in c["validators"]] == [signer]


def credit_client(state_dir: Path, bank: str) -> CreditClient:
    a = local_resolver(state_dir).resolve(bank)
    return CreditClient(
        a.rpc_url, registry=a.registry, account_key=a.account_key,
        pseudonym_secret=a.pseudonym_secret,
    )  # fmt: skip


def test_the_secret_reaches_it_sealed_and_the_others_read_its_records(
    founders: LocalConsortium, joiner_dir: Path
) -> None:
    joined = LocalConsortium(joiner_dir / "s")
    refused = poactl("members", "share-secret", "bank-d", "--as", "bank-a",
                     "--state-dir", str(founders.layout.root))  # fmt: skip
    assert refused.exit_code != 0 and "the secret goes only to an admitted bank" in refused.output
    # From bank-b, which bank-c did not join from: bank-c finds bank-b's data in bank-a's
    # directory.
    shared = poactl("members", "share-secret", "bank-c", "--as", "bank-b",
                    "--state-dir", str(founders.layout.root))  # fmt: skip
    assert shared.exit_code == 0, shared.output
    secret = founders.vault("bank-b").get_secret(PSEUDONYM_SECRET_NAME)
    assert secret is not None
    envelope = founders.layout.published("bank-b") / "sealed" / "bank-b" / "bank-c.json"
    assert secret.value not in envelope.read_text()  # never in clear
    wait_for(lambda: joined.vault("bank-c").get_secret(PSEUDONYM_SECRET_NAME) == secret, 30,
             "bank-c's leader to take the secret into its vault")  # fmt: skip

    c = credit_client(joined.layout.root, "bank-c")
    b = credit_client(founders.layout.root, "bank-b")
    assert c.rpc_url == joined.load().node("bank-c-1").rpc_url  # bank-c's own node
    subject = c.subject("078-05-1120")
    assert b.subject("078-05-1120") == subject  # the same pseudonym at both banks
    sent = record("JOINED-LOAN-1", current_balance=4_200)
    c.report(subject, sent).wait(timeout=30)
    what = "bank-b to read bank-c's record"
    wait_for(lambda: bool(b.get(subject, min_block="head").tradelines), 20, what)
    (tradeline,) = b.get(subject, min_block="head").tradelines
    assert tradeline.record == sent and tradeline.furnisher == c.furnisher
