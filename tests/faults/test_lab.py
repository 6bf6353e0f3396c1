"""The lab's network on its own (no consortium): hosts in their namespaces, traffic between
banks through Toxiproxy, cuts that drop packets, and nothing left behind, even when the
process that made a lab dies."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.lab import netns, topology
from orchestrator.lab.consortium import STORE_PORT
from orchestrator.lab.lab import Lab
from orchestrator.lab.status import lab_status
from tests.helpers.waiting import wait_for

LATENCY_MS = 300


def rtt(lab: Lab, src: str, address: str, port: int, *, timeout: float = 3.0) -> float | None:
    """Seconds for one HTTP request from host `src` to address:port (None: no answer)."""
    with netns.inside(lab.plan.host(src).ns):
        t0 = time.monotonic()
        try:
            with socket.create_connection((address, port), timeout=timeout) as s:
                s.sendall(b"GET /devstoreaccount1?comp=list HTTP/1.0\r\n\r\n")
                s.settimeout(timeout)
                if not s.recv(12).startswith(b"HTTP/1."):
                    return None
        except OSError:
            return None
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def network(lab_ready: None) -> Iterator[Lab]:
    """The default consortium's network: namespaces, links, Toxiproxy and the stores."""
    root = Path(tempfile.mkdtemp(prefix="pl-", dir="/tmp"))
    lab = Lab.create(root / "lab", None, owner_pid=os.getpid())
    lab.build_network(lambda _line: None)
    yield lab
    lab.down(purge=True)
    shutil.rmtree(root, ignore_errors=True)


def test_each_host_has_its_namespace_and_the_banks_meet_at_the_router(network: Lab) -> None:
    plan = network.plan
    assert set(plan.namespaces) <= set(netns.names())
    a, b = plan.banks
    assert a.subnet != b.subnet
    assert {h.address for h in a.hosts}.isdisjoint(h.address for h in b.hosts)
    addresses = netns.run(["ip", "-4", "-o", "addr"], ns=a.node("bank-a-1").ns)
    assert "10.77.1.10/24" in addresses
    assert "default via 10.77.1.1" in netns.run(["ip", "route"], ns=a.node("bank-a-1").ns)
    assert "network up" in lab_status(network, nodes=False)


def test_traffic_between_banks_crosses_toxiproxy_and_traffic_inside_does_not(
    network: Lab,
) -> None:
    a, b = network.plan.banks
    assert rtt(network, "bank-a-app", b.store.address, STORE_PORT) is not None
    network.wan.slow(latency_ms=LATENCY_MS)
    across = rtt(network, "bank-a-app", b.store.address, STORE_PORT)
    inside = rtt(network, "bank-a-app", a.store.address, STORE_PORT)
    assert across is not None and across >= 2 * LATENCY_MS / 1000  # both ways
    assert inside is not None and inside < LATENCY_MS / 1000
    assert "latency" in lab_status(network, nodes=False)
    network.wan.reset()
    again = rtt(network, "bank-a-app", b.store.address, STORE_PORT)
    assert again is not None and again < LATENCY_MS / 1000


def test_a_cut_drops_packets_both_ways_until_healed(network: Lab) -> None:
    a, b = network.plan.banks
    network.cut_banks("bank-a", "bank-b")
    assert rtt(network, "bank-a-app", b.store.address, STORE_PORT, timeout=1) is None
    assert rtt(network, "bank-b-app", a.store.address, STORE_PORT, timeout=1) is None
    assert rtt(network, "bank-a-app", a.store.address, STORE_PORT) is not None
    assert "bank-a | bank-b" in lab_status(network, nodes=False)
    network.heal()
    assert rtt(network, "bank-a-app", b.store.address, STORE_PORT) is not None
    network.isolate("bank-a-1")  # a node keeps its store, nothing else
    assert rtt(network, "bank-a-1", a.store.address, STORE_PORT) is not None
    assert rtt(network, "bank-a-1", b.store.address, STORE_PORT, timeout=1) is None
    assert rtt(network, "bank-a-app", a.store.address, STORE_PORT) is not None
    network.heal()
    assert rtt(network, "bank-a-1", b.store.address, STORE_PORT) is not None


def test_a_lab_whose_owner_died_is_removed_by_the_next_run(lab_dir: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from orchestrator.lab.lab import Lab;"
        f"lab = Lab.create(Path({str(lab_dir / 'lab')!r}), None, owner_pid=os.getpid());"
        "lab.build_network(lambda _l: None); print(lab.plan.prefix, flush=True);"
        "os.kill(os.getpid(), 9)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    prefix = done.stdout.strip()
    assert prefix and any(ns.startswith(prefix) for ns in netns.names()), done.stderr
    assert prefix in topology.remove_stale()
    wait_for(lambda: not any(ns.startswith(prefix) for ns in netns.names()), 30, "no namespace")
    assert not (topology.RECORDS / f"{prefix}.json").exists()
    # its processes (the stores, Toxiproxy) went with the namespaces
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(lab_dir / "lab") not in out.stdout


@pytest.mark.geth
@pytest.mark.slow
def test_the_lab_command_brings_the_consortium_up_slows_cuts_and_removes_it(
    lab_dir: Path,
) -> None:
    root = lab_dir / "lab"

    def poactl(*args: str) -> str:
        result = CliRunner().invoke(main, ["lab", *args, "--dir", str(root)])
        assert result.exit_code == 0, result.output
        return result.output

    try:
        up = poactl("up", "--timeout", "300")
        assert "up in" in up and "SEALING" in up and "bank-b-lb" in up, up
        slowed = poactl("net", "--latency", "150", "--rate", "512")
        assert "latency" in slowed and "bandwidth" in slowed, slowed
        cut = poactl("net", "--cut", "bank-a,bank-b")
        assert "bank-a | bank-b" in cut, cut
        healed = poactl("net", "--heal", "--clear")
        assert "cuts: none" in healed and "no toxics" in healed, healed
        bad = CliRunner().invoke(main, ["lab", "net", "--cut", "bank-a,bank-x", "--dir", str(root)])
        assert bad.exit_code == 1 and "give two banks of the lab" in bad.output
        ran = subprocess.run([sys.executable, "-m", "orchestrator.cli", "lab", "exec", "bank-a-app",
                              "--dir", str(root), "--", "ip", "-4", "-o", "addr"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert "10.77.1.4/24" in ran.stdout, ran.stderr
    finally:
        if (root / "lab.json").exists():
            prefix = Lab.open(root).plan.prefix
            poactl("down", "--purge")
            assert not any(ns.startswith(prefix) for ns in netns.names())
    assert not root.exists()
