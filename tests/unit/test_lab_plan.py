"""The lab's plan (names and addresses, pure) and what it says where it cannot run."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.lab import netns
from orchestrator.lab.topology import LAB_NET, PREFIX, Plan


def test_each_bank_gets_a_subnet_and_each_host_an_address_and_a_namespace() -> None:
    nodes = [("bank-a-1", "bank-a"), ("bank-a-2", "bank-a"), ("bank-b-1", "bank-b")]
    plan = Plan.of("pl0a1b2c", nodes)
    a, b = plan.banks
    assert (a.subnet, b.subnet) == ("10.77.1.0/24", "10.77.2.0/24")
    assert (a.balancer.address, a.store.address, a.app.address) == ("10.77.1.2", "10.77.1.3",
                                                                     "10.77.1.4")  # fmt: skip
    assert plan.host("bank-a-2").address == "10.77.1.11"
    assert plan.host("bank-b-1").ns == "pl0a1b2c-bank-b-1"
    assert plan.router == "pl0a1b2c-rt"
    every = [h for bank in plan.banks for h in bank.hosts]
    assert len({h.address for h in every}) == len(every) == len(plan.namespaces) - 1
    assert all(len(h.router_dev) <= 15 for h in every)  # Linux interface names
    assert all(h.ns.startswith(plan.prefix + "-") for h in every)
    joined = plan.with_bank("bank-c", ["bank-c-1"])
    assert joined.bank("bank-c").subnet == "10.77.3.0/24" and plan.banks == joined.banks[:2]
    assert all(LAB_NET.supernet_of(ipaddress.ip_network(b.subnet)) for b in joined.banks)


def test_prefixes_are_fresh_and_recognisable() -> None:
    prefixes = {Plan.new_prefix() for _ in range(20)}
    assert len(prefixes) == 20 and all(PREFIX.match(p) for p in prefixes)


def test_without_root_the_lab_says_why_and_the_command_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "root" in (netns.unavailable() or "")
    result = CliRunner().invoke(main, ["lab", "up", "--dir", str(tmp_path / "lab")])
    assert result.exit_code == 1, result.output
    assert "needs root" in result.output and "hint:" in result.output
    assert not (tmp_path / "lab").exists()  # nothing half-made


def test_a_lab_command_on_a_directory_without_a_lab_names_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["lab", "status", "--dir", str(tmp_path)])
    assert (
        result.exit_code == 1
        and "no lab here" in result.output
        and "poactl lab up" in result.output
    )
