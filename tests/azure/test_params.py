"""`poactl azure params`: a bank's parameter file from the consortium file, and the
deployments it refuses, each with a message naming the problem and a hint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.azure.params import Choices, render
from orchestrator.cli.main import main
from orchestrator.config import load_config, parse_config
from orchestrator.errors import ConfigError


def params(*args: str) -> Result:
    return CliRunner().invoke(main, ["azure", "params", *args])


def values_of(result: Result) -> dict[str, Any]:
    doc = json.loads(result.stdout)
    return {k: v["value"] for k, v in doc["parameters"].items()}


@pytest.mark.parametrize("profile", ["small", "medium", "large"])
@pytest.mark.parametrize("bank", ["bank-a", "bank-b"])
def test_renders_every_profile_for_both_banks_of_the_default_file(bank: str, profile: str) -> None:
    result = params("--member", bank, "--profile", profile)
    assert result.exit_code == 0, result.output
    values = values_of(result)
    assert values["member"] == bank
    assert values["instanceCount"] == {"small": 3, "medium": 7, "large": 15}[profile]
    assert values["monitoring"] == (profile != "small")
    consortium = parse_config(values["consortium"], source="rendered")
    assert consortium.members() == [bank]
    default = load_config()
    for key in ("chain_id", "block_period", "epoch", "gas_limit", "tuning", "governance"):
        assert getattr(consortium.settings, key) == getattr(default.settings, key), key
    if bank == "bank-a":
        assert values["joinFrom"] == ""
        assert "founds the network" in result.stderr
    else:
        assert values["joinFrom"] == "http://10.1.0.254:8780/consortium"
        assert "joins from" in result.stderr
    assert values["addressSpace"] == {"bank-a": "10.1.0.0/16", "bank-b": "10.2.0.0/16"}[bank]
    assert values["peerNetwork"] == "10.0.0.0/14"


def test_the_vms_consortium_file_follows_the_consortium_files_tuning(tmp_path: Path) -> None:
    text = (
        Path("orchestrator/consortium.yaml")
        .read_text()
        .replace("tuning:\n  cache_mb: 128\n  memory_limit_mb: 256\n  recommit_seconds: 1\n",
                 "tuning: {cache_mb: 64, memory_limit_mb: 512}\n")
    )  # fmt: skip
    assert "memory_limit_mb: 512" in text
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = params("--member", "bank-a", "--config", str(config))
    assert result.exit_code == 0, result.output
    rendered = parse_config(values_of(result)["consortium"], source="x")
    assert rendered.settings.tuning.flags() == ("--cache", "64")
    assert rendered.settings.tuning.environment() == {"GOMEMLIMIT": "512MiB"}


def test_writes_the_file_and_takes_the_ssh_key(tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza test@host\n")
    out = tmp_path / "deep" / "bank-a.json"
    result = params("--member", "bank-a", "--out", str(out), "--ssh-public-key", str(key),
                    "--app-network", "10.50.0.0/16", "--operator-ip", "198.51.100.7")  # fmt: skip
    assert result.exit_code == 0, result.output
    values = {k: v["value"] for k, v in json.loads(out.read_text())["parameters"].items()}
    assert values["sshPublicKey"] == "ssh-ed25519 AAAAC3Nza test@host"
    assert values["applicationSources"] == ["10.50.0.0/16"]
    assert values["operatorSources"] == ["198.51.100.7/32"]
    private = tmp_path / "id"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    refused = params("--member", "bank-a", "--ssh-public-key", str(private))
    assert refused.exit_code == 1 and "not an SSH public key" in refused.stderr


def _file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "consortium.yaml"
    path.write_text(body)
    return str(path)


TWO_BANKS = "members:\n  bank-a: {validators: 2, spares: 1}\n  bank-b: {validators: 2, spares: 1}\n"


@pytest.mark.parametrize(
    ("body", "args", "message", "hint"),
    [
        (TWO_BANKS, ["--member", "bank-z"], "'bank-z' is not a member", "members: bank-a, bank-b"),
        (TWO_BANKS, ["--member", "bank-a", "--instances", "2"],
         "--instances gives 2 VMs; bank-a needs 3 (validators 2 + spares 1)", "larger profile"),
        ("members:\n  bank-a: {validators: 7, spares: 2}\n", ["--member", "bank-a", "--profile",
         "medium"], "the medium profile gives 7 VMs; bank-a needs 9", "larger profile"),
        (TWO_BANKS + "azure:\n  members:\n    bank-a: {address_space: 10.0.0.0/8}\n",
         ["--member", "bank-b"], "the address spaces of bank-a (10.0.0.0/8) and bank-b "
         "(10.2.0.0/16) overlap", "its own address space"),
        (TWO_BANKS + "azure:\n  members:\n    bank-b: {address_space: 8.8.0.0/16}\n",
         ["--member", "bank-b"], "not a private IPv4 network", "private IPv4 CIDR"),
        (TWO_BANKS, ["--member", "bank-a", "--hsm"], "HSM-backed validator keys need custody: "
         "keys", "custody: keys"),
        ("members:\n  bank-a: {custody: keys}\n", ["--member", "bank-a", "--hsm", "--vault-sku",
         "standard"], "need a premium vault", "--vault-sku premium"),
        ("members:\n  bank-a: {rpc_nodes: 1}\n", ["--member", "bank-a"], "rpc_nodes: 1",
         "rpc_nodes: 0"),
        (TWO_BANKS, ["--member", "bank-a", "--join", "http://10.2.0.254:8780/consortium"],
         "it founds the network", "leave out --join"),
        (TWO_BANKS + "azure: {peering: public}\n", ["--member", "bank-b"],
         "with public peering the founder's consortium data URL", "--join URL"),
        ("members:\n  bank-a: {validators: 2}\n  bank-b: {validators: 3}\n",
         ["--member", "bank-b"], "bank-b would run 3 validators; the network lets a member have 2",
         "validator_cap"),
        (TWO_BANKS, ["--member", "bank-b", "--join", "ftp://x/y"], "is not an http(s) URL",
         "consortiumDataUrl"),
        (TWO_BANKS, ["--member", "bank-a", "--operator-ip", "10.0.0.5"], "private address",
         "public address"),
        (TWO_BANKS, ["--member", "bank-a", "--name-suffix", "Not_OK"], "not a name suffix",
         "lowercase"),
    ],
)  # fmt: skip
def test_refuses_what_cannot_work(
    tmp_path: Path, body: str, args: list[str], message: str, hint: str
) -> None:
    result = params("--config", _file(tmp_path, body), *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "hint: " in result.stderr and hint in result.stderr
    assert result.stdout == ""


def test_refusals_are_config_errors_with_the_object_named() -> None:
    with pytest.raises(ConfigError) as caught:
        render(load_config(), Choices(member="bank-a", instances=1))
    assert caught.value.obj == "members.bank-a"
    assert caught.value.hint


def test_public_peering_reads_the_other_members_egress(tmp_path: Path) -> None:
    body = TWO_BANKS + (
        "azure:\n  peering: public\n  members:\n    bank-a: {egress: [203.0.113.10]}\n"
    )
    result = params("--config", _file(tmp_path, body), "--member", "bank-b", "--join",
                    "http://203.0.113.20:8780/consortium")  # fmt: skip
    assert result.exit_code == 0, result.output
    values = values_of(result)
    assert values["peerSources"] == ["203.0.113.10/32"]
    assert values["peerNetwork"] == "0.0.0.0/0"
    founder = params("--config", _file(tmp_path, body), "--member", "bank-a")
    assert "no other member's egress address is known yet" in founder.stderr


def test_names_are_stable_and_valid() -> None:
    first, again = params("--member", "bank-a"), params("--member", "bank-a", "--profile", "large")
    a, b = values_of(first), values_of(again)
    assert (a["vaultName"], a["storageAccountName"]) == (b["vaultName"], b["storageAccountName"])
    assert a["storageAccountName"].isalnum() and 3 <= len(a["storageAccountName"]) <= 24
    assert 3 <= len(a["vaultName"]) <= 24 and "--" not in a["vaultName"]
    named = values_of(params("--member", "bank-a", "--name-suffix", "x1"))
    assert named["vaultName"].endswith("-x1") and named["storageAccountName"].endswith("x1")
