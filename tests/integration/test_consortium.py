"""A real four-signer consortium (two banks, two validators each) on geth 1.13.15,
run by one agent per node over the local store and each bank's local vault.

One consortium is shared by the tests of this module, in file order: sealing rhythm,
status, a kill -9 of one validator's geth, and finally down + up resuming the chain.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.geth.client import http_web3
from orchestrator.geth.ipc import ipc_probe
from orchestrator.local.consortium import LocalConsortium
from tests.helpers.ports import consortium_yaml
from tests.helpers.waiting import wait_for

pytestmark = [pytest.mark.geth, pytest.mark.slow]

TUNING = "tuning: {cache_mb: 256, memory_limit_mb: 512, recommit_seconds: 1}\n"
TUNED_ARGV = ["--cache", "256", "--miner.recommit", "1s"]


def runs_tuned(pid: int) -> bool:
    """Whether the geth of `pid` runs with the file's tuning flags and memory limit."""
    proc = psutil.Process(pid)
    argv = proc.cmdline()
    flags = [argv[i : i + 2] for i in range(len(argv) - 1)]
    return (
        all(pair in flags for pair in (TUNED_ARGV[:2], TUNED_ARGV[2:]))
        and proc.environ().get("GOMEMLIMIT") == "512MiB"
    )


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[LocalConsortium]:
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    config.write_text(consortium_yaml({"bank-a": 2, "bank-b": 2}, extra=TUNING))
    local = LocalConsortium(root / "state", geth=geth)
    try:
        result = local.up(config, timeout=90)
        assert result.created and len(result.started) == 4
        yield local
    finally:
        if local.exists:
            local.down()
        shutil.rmtree(root, ignore_errors=True)


def head(local: LocalConsortium, node: str) -> int:
    return int(http_web3(local.load().node(node).rpc_url).eth.block_number)


def sealer(local: LocalConsortium, node: str, number: int) -> str:
    signer = ipc_probe(local.layout.node(node).ipc, "clique_getSigner", [hex(number)])
    assert signer is not None, f"no clique_getSigner answer from {node}"
    return str(signer).lower()


def test_blocks_every_two_seconds_and_every_signer_seals(running: LocalConsortium) -> None:
    start = head(running, "bank-a-1")
    wait_for(lambda: head(running, "bank-a-1") >= start + 12, 60, "12 more blocks")
    w3 = http_web3(running.load().node("bank-a-1").rpc_url)
    end = int(w3.eth.block_number)
    numbers = range(max(1, end - 12), end + 1)
    times = [int(w3.eth.get_block(n)["timestamp"]) for n in numbers]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 10
    assert statistics.median(gaps) == 2, gaps

    sealed_by = {sealer(running, "bank-a-1", n) for n in range(1, end + 1)}
    signers = {a.lower() for a in running.signers().values()}
    assert len(signers) == 4
    assert signers <= sealed_by, f"never sealed: {signers - sealed_by}"


def test_status_json_lists_every_node(running: LocalConsortium) -> None:
    def status() -> dict[str, Any]:
        result = CliRunner().invoke(
            main, ["status", "--state-dir", str(running.layout.root), "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)  # type: ignore[no-any-return]

    # An agent adds the peers it finds in the store every 5 s, so a node may still be
    # short of its last peer right after `up`.
    wait_for(lambda: all(n["peers"] == 3 for n in status()["nodes"]), 20, "a full mesh")
    report = status()
    assert report["chain_id"] == running.load().settings.chain_id
    names = [n["name"] for n in report["nodes"]]
    assert names == ["bank-a-1", "bank-a-2", "bank-b-1", "bank-b-2"]
    holders = {(r["member"], r["lease"]): r["holder"] for r in report["leases"]}
    assert holders[("bank-a", "leader")] in ("bank-a-1", "bank-a-2")
    assert sorted(v for (_, lease), v in holders.items() if lease != "leader") == names
    for node in report["nodes"]:
        assert {"name", "member", "role", "rpc_url", "signer", "block", "peers", "healthy"} <= (
            node.keys()
        )
        assert node["role"] == "validator"
        assert node["healthy"] is True, node
        assert node["sealing"] is True, node
        assert node["peers"] == 3
        assert node["signer"] == running.signers()[node["name"]]
        assert node["rpc_url"].startswith("http://127.0.0.1:")


def test_every_geth_runs_with_the_files_tuning(running: LocalConsortium) -> None:
    for node in running.load().nodes:
        pid = json.loads(running.layout.node(node.name).status.read_text())["geth_pid"]
        assert runs_tuned(pid), f"{node.name}: {psutil.Process(pid).cmdline()}"


def test_kill_9_one_validator_is_restarted_and_catches_up(running: LocalConsortium) -> None:
    victim = "bank-b-2"
    status_file = running.layout.node(victim).status
    before = json.loads(status_file.read_text())
    os.kill(before["geth_pid"], signal.SIGKILL)
    killed_at = head(running, "bank-a-1")

    # The other three keep sealing while the victim is down or restarting.
    wait_for(lambda: head(running, "bank-a-1") >= killed_at + 3, 30, "3 blocks without victim")
    others = {sealer(running, "bank-a-1", n) for n in range(killed_at + 1, killed_at + 4)}
    assert len(others) >= 2

    # The supervisor restarted it with a new process.
    def restarted() -> bool:
        now = json.loads(status_file.read_text())
        return now["state"] == "RUNNING" and now["geth_pid"] not in (None, before["geth_pid"])

    wait_for(restarted, 30, "the supervisor to restart geth")
    assert json.loads(status_file.read_text())["restarts"] >= before["restarts"] + 1
    assert runs_tuned(json.loads(status_file.read_text())["geth_pid"])  # as the first one

    # It catches up to the head and seals again.
    wait_for(lambda: head(running, victim) >= head(running, "bank-a-1") - 1, 45, "victim catch-up")
    victim_signer = running.signers()[victim].lower()
    resumed_at = head(running, "bank-a-1")

    def victim_sealed_again() -> bool:
        top = head(running, "bank-a-1")
        blocks = range(resumed_at, top + 1)
        return any(sealer(running, "bank-a-1", n) == victim_signer for n in blocks)

    wait_for(victim_sealed_again, 40, "the victim to seal again")


def test_a_second_agent_for_a_running_node_refuses(running: LocalConsortium) -> None:
    """One node, one agent: the node's lock keeps a second agent (and geth) out."""
    before = json.loads(running.layout.node("bank-a-1").status.read_text())
    config = running.layout.node("bank-a-1").agent_config
    result = CliRunner().invoke(main, ["agent", "--config", str(config)])
    assert result.exit_code == 1
    assert "another agent already runs this node" in result.output
    after = json.loads(running.layout.node("bank-a-1").status.read_text())
    assert after["geth_pid"] == before["geth_pid"] and after["state"] == "RUNNING"


def test_down_then_up_resumes_the_same_chain(running: LocalConsortium) -> None:
    rpc = running.load().node("bank-a-1").rpc_url
    genesis_hash = http_web3(rpc).eth.get_block(0)["hash"]
    height = head(running, "bank-a-1")

    stopped = running.down()
    assert sorted(stopped) == ["bank-a-1", "bank-a-2", "bank-b-1", "bank-b-2"]
    with pytest.raises(requests.exceptions.ConnectionError):
        http_web3(rpc, timeout=1).eth.get_block("latest")
    down = CliRunner().invoke(main, ["status", "--state-dir", str(running.layout.root)])
    assert down.exit_code == 2, down.output

    result = CliRunner().invoke(main, ["up", "--state-dir", str(running.layout.root)])
    assert result.exit_code == 0, result.output
    assert "RPC endpoints" in result.output and rpc in result.output
    assert http_web3(rpc).eth.get_block(0)["hash"] == genesis_hash
    assert head(running, "bank-a-1") > height
