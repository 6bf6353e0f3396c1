"""Bad input and failed starts on real geth: clear errors, nothing half-made left behind."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis import CliqueSpec, build_genesis, canonical_json
from orchestrator.cli.main import main
from orchestrator.local.consortium import LocalConsortium
from tests.helpers.ports import consortium_yaml
from tests.helpers.processes import processes_mentioning

pytestmark = pytest.mark.geth

MakeConsortium = Callable[..., tuple[LocalConsortium, Path]]


def test_geth_init_accepts_a_generated_genesis(geth: str, short_dir: Path) -> None:
    spec = CliqueSpec(
        chain_id=4321,
        signers=["0x" + "ab" * 20, "0x" + "12" * 20],
        alloc={"0x" + "cd" * 20: 10**18},
    )
    path = short_dir / "genesis.json"
    path.write_bytes(canonical_json(build_genesis(spec)))
    init = subprocess.run(
        [geth, "--datadir", str(short_dir / "d"), "init", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    assert "Successfully wrote genesis state" in init.stderr
    dumped = subprocess.run(
        [geth, "--datadir", str(short_dir / "d"), "dumpgenesis"],
        capture_output=True,
        text=True,
        check=True,
    )
    stored = json.loads(dumped.stdout)
    assert stored["extraData"] == build_genesis(spec)["extraData"]
    assert stored["config"]["clique"] == {"period": 2, "epoch": 30000}
    assert "shanghaiTime" not in stored["config"]


def test_port_clash_with_a_running_server_starts_nothing(
    make_consortium: MakeConsortium,
) -> None:
    local, config = make_consortium(consortium_yaml({"bank-a": 1, "bank-b": 1}))
    http_base = local_ports(config)["http"]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", http_base + 1))
        blocker.listen()
        result = CliRunner().invoke(
            main, ["up", "--config", str(config), "--state-dir", str(local.layout.root)]
        )
    assert result.exit_code == 1
    assert "port clash" in result.output
    assert str(http_base + 1) in result.output and "bank-b-1" in result.output
    assert not local.layout.root.exists()
    assert processes_mentioning(str(local.layout.root)) == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("block_period: 2\n", "members"),
        ("members: {bank-a: {validators: 1}}\nblock_perod: 2\n", "block_perod"),
        ("block_period: 0\nmembers: {bank-a: {validators: 1}}\n", "block_period"),
    ],
)
def test_bad_config_exits_nonzero_and_leaves_nothing(
    make_consortium: MakeConsortium, text: str, named: str
) -> None:
    local, config = make_consortium(text)
    result = CliRunner().invoke(
        main, ["up", "--config", str(config), "--state-dir", str(local.layout.root)]
    )
    assert result.exit_code == 1
    assert named in result.output and "hint:" in result.output
    assert not local.layout.root.exists()
    assert processes_mentioning(str(local.layout.root)) == []


def test_up_that_times_out_stops_everything_it_started(make_consortium: MakeConsortium) -> None:
    local, config = make_consortium(consortium_yaml({"bank-a": 2}))
    result = CliRunner().invoke(
        main,
        ["up", "--config", str(config), "--state-dir", str(local.layout.root), "--timeout", "0.5"],
    )
    assert result.exit_code == 1
    assert "the consortium did not become ready in time" in result.output
    assert "waited:" in result.output and "last state:" in result.output
    assert processes_mentioning(str(local.layout.root)) == []
    # The agents were stopped before they made anything half-way; up can run again.
    assert local.exists
    again = CliRunner().invoke(main, ["up", "--state-dir", str(local.layout.root)])
    assert again.exit_code == 0, again.output


def test_up_with_other_settings_on_an_existing_state_dir_is_refused(
    make_consortium: MakeConsortium,
) -> None:
    local, config = make_consortium(consortium_yaml({"bank-a": 1}))
    local.up(config, timeout=60)
    local.down()
    other = config.with_name("other.yaml")
    other.write_text(config.read_text().replace("block_period: 2", "block_period: 3"))
    result = CliRunner().invoke(
        main, ["up", "--config", str(other), "--state-dir", str(local.layout.root)]
    )
    assert result.exit_code == 1
    assert "different settings" in result.output
    assert processes_mentioning(str(local.layout.root)) == []


def local_ports(config: Path) -> dict[str, int]:
    from orchestrator.config import load_config

    ports = load_config(config).settings.ports
    return {"p2p": ports.p2p, "http": ports.http, "authrpc": ports.authrpc}
