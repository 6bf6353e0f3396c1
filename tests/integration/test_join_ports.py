"""`poactl join` on the machine that runs the network it joins: with no `ports:` of its
own, the new bank takes base ports that are free (the defaults where they are) and says
which, instead of failing on the first clash."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.config import ConsortiumFile, Member, Ports, parse_config
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.ports import free_bases, port_is_free
from tests.helpers.consortium import running_consortium
from tests.helpers.ports import consortium_yaml


@contextlib.contextmanager
def taken(ports: list[int]) -> Iterator[list[int]]:
    """Listeners on those of `ports` that are free now (the others are taken already)."""
    held = []
    for port in ports:
        with contextlib.suppress(OSError):
            s = socket.create_server(("127.0.0.1", port))
            held.append(s)
    try:
        yield ports
    finally:
        for s in held:
            s.close()


def test_free_bases_keep_free_defaults_and_move_taken_ones() -> None:
    settings = ConsortiumFile(members={"bank-c": Member(validators=2, spares=1)})
    defaults = Ports()
    spans = {"monitor": 1, "balancer": 1, "balancer_internal": 2}
    free_before = {
        kind: all(port_is_free(p) for p in range(base, base + spans.get(kind, 3)))
        for kind, base in defaults
    }
    with taken([defaults.p2p + 1, defaults.metrics]):
        chosen = free_bases(settings)
        assert chosen.p2p != defaults.p2p and chosen.metrics != defaults.metrics
        ranges = [range(base, base + spans.get(kind, 3)) for kind, base in chosen]
        assert all(port_is_free(p) for r in ranges for p in r)
        assert len({p for r in ranges for p in r}) == sum(len(r) for r in ranges)
    for kind, base in chosen:
        if free_before[kind] and kind not in ("p2p", "metrics"):
            assert base == getattr(defaults, kind), kind  # a free default is kept
    text = "members: {bank-c: {validators: 2, spares: 1}}\nports: " + str(dict(chosen))
    parse_config(text.replace("'", ""), source="chosen")  # no clash between the ranges


@pytest.mark.geth
@pytest.mark.slow
def test_join_beside_a_running_network_picks_free_base_ports(geth: str, short_dir: Path) -> None:
    founders_text = consortium_yaml({"bank-a": 1, "bank-b": 1})
    defaults = Ports()
    with (
        running_consortium(geth, founders_text) as founders,
        taken([getattr(defaults, k) for k in Ports.model_fields]),  # as the default network does
    ):
        state = short_dir / "c"
        result = CliRunner().invoke(main, [
            "join", "--from", founders.data_url("bank-a"), "--member", "bank-c",
            "--state-dir", str(state), "--geth", geth, "--timeout", "120",
        ])  # fmt: skip
        joined = LocalConsortium(state)
        try:
            assert result.exit_code == 0, result.output
            assert "base ports (free on this machine" in result.output, result.output
            node = joined.load().node("bank-c-1")
            for kind, port in node.ports():
                assert port != getattr(defaults, kind), (kind, port)
                assert f"{kind} {joined.load().settings.ports.model_dump()[kind]}" in result.output
        finally:
            if joined.exists:
                joined.down()
