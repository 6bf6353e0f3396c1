"""consortium.yaml: the shipped default, every rejected document, and canonical()."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_config, parse_config
from orchestrator.errors import ConfigError

# -- the shipped default --------------------------------------------------------------


def test_shipped_default_is_two_banks_of_two_identities_and_one_spare() -> None:
    c = load_config()
    assert c.members() == ["bank-a", "bank-b"]
    for member in c.settings.members.values():
        assert (member.validators, member.spares, member.rpc_nodes) == (2, 1, 0)
    assert c.identities == 4  # signers in the genesis
    names = ["bank-a-1", "bank-a-2", "bank-a-3", "bank-b-1", "bank-b-2", "bank-b-3"]
    assert [n.name for n in c.nodes] == names  # one agent each, spares included
    assert [n.name for n in c.validators] == names  # every agent competes for an identity
    assert [n.member for n in c.nodes] == ["bank-a"] * 3 + ["bank-b"] * 3
    assert c.settings.block_period == 2
    assert c.settings.chain_id == 7272
    assert c.settings.supervision.lease_seconds == 15
    assert c.settings.supervision.heartbeat_seconds == 10


def test_shipped_default_gives_every_node_five_distinct_ports_and_each_bank_a_monitor() -> None:
    c = load_config()
    kinds = [kind for kind, _ in c.nodes[0].ports()]
    assert kinds == ["p2p", "http", "authrpc", "health", "metrics"]
    ports = [p for n in c.nodes for _, p in n.ports()]
    assert len(ports) == len(set(ports)) == 6 * 5
    assert all(1024 <= p <= 65535 for p in ports)
    b2 = c.node("bank-b-2")  # the fifth node: every base + 4
    assert b2.ports() == (
        ("p2p", 30307), ("http", 8549), ("authrpc", 8655), ("health", 8749), ("metrics", 6064),
    )  # fmt: skip
    assert b2.rpc_url == "http://127.0.0.1:8549"
    assert (c.monitor_port("bank-a"), c.monitor_port("bank-b")) == (8845, 8846)


def test_a_monitor_port_that_clashes_with_a_node_port_is_refused() -> None:
    text = "ports: {monitor: 8546}\nmembers: {bank-a: {validators: 2}}\n"
    with pytest.raises(
        ConfigError, match="monitor port of bank-a would be 8546, which is http port"
    ):
        parse_config(text, source="c.yaml")


def test_unknown_node_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no such node") as caught:
        load_config().node("bank-c-1")
    assert "bank-a-1, bank-a-2, bank-a-3, bank-b-1, bank-b-2, bank-b-3" in str(caught.value)


def test_nodes_are_numbered_validators_and_spares_first_with_ports_in_file_order() -> None:
    c = parse_config(
        "ports: {p2p: 40000, http: 41000, authrpc: 42000, health: 43000}\n"
        "members:\n"
        "  zeta: {validators: 1, rpc_nodes: 1}\n"  # one spare by default
        "  alpha: {validators: 2, spares: 0}\n",
        source="t",
    )
    assert [(n.name, n.role, n.p2p_port, n.health_port) for n in c.nodes] == [
        ("zeta-1", "validator", 40000, 43000),
        ("zeta-2", "validator", 40001, 43001),  # the spare
        ("zeta-3", "rpc", 40002, 43002),
        ("alpha-1", "validator", 40003, 43003),
        ("alpha-2", "validator", 40004, 43004),
    ]
    assert c.identities == 3  # spares add agents, not signers


def test_a_member_without_identities_gets_no_spare_agents() -> None:
    c = parse_config(
        "members:\n  bank-a: {validators: 1}\n  bank-b: {validators: 0, spares: 2, rpc_nodes: 1}\n",
        source="t",
    )
    assert [(n.name, n.role) for n in c.nodes] == [
        ("bank-a-1", "validator"),
        ("bank-a-2", "validator"),
        ("bank-b-1", "rpc"),
    ]


# -- rejected documents ---------------------------------------------------------------

ONE_MEMBER = "members: {bank-a: {validators: 1}}\n"

BAD_DOCUMENTS = [
    pytest.param("chain_id: 5\n", ["members", "required key is missing"], id="missing-members"),
    pytest.param("members: {}\n", ["members", "{}", "at least 1 item"], id="empty-members"),
    pytest.param(
        ONE_MEMBER + "block_perod: 3\n",
        ["block_perod", "unknown key", "block_period"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        "members: {bank-a: {validator: 2}}\n",
        [
            "members.bank-a.validator",
            "unknown key",
            "allowed here: validators, spares, rpc_nodes",
        ],
        id="unknown-member-key",
    ),
    pytest.param(
        ONE_MEMBER + "ports: {rpc: 9000}\n",
        ["ports.rpc", "unknown key", "allowed here: p2p, http, authrpc, health"],
        id="unknown-ports-key",
    ),
    pytest.param(
        ONE_MEMBER + "block_period: 0\n",
        ["block_period", "0 is not allowed", "greater than or equal to 1"],
        id="period-0",
    ),
    pytest.param(
        ONE_MEMBER + "block_period: '2'\n",
        ["block_period", "'2' is not allowed", "integer"],
        id="period-as-string",
    ),
    pytest.param(
        "members: {Bank_A: {validators: 1}}\n",
        ["members.Bank_A", "'Bank_A' is not allowed", "pattern"],
        id="bad-member-name",
    ),
    pytest.param(
        ONE_MEMBER + "ports: {http: 80}\n",
        ["ports.http", "80 is not allowed", "greater than or equal to 1024"],
        id="port-below-1024",
    ),
    pytest.param(
        "ports: {p2p: 8545, http: 8546}\nmembers: {bank-a: {validators: 2}}\n",
        ["ports", "port clash", "8546", "bank-a-1", "bank-a-2"],
        id="p2p-and-http-bases-clash",
    ),
    pytest.param(
        "ports: {p2p: 65535}\nmembers: {bank-a: {validators: 2}}\n",
        ["ports.p2p", "65536", "above 65535"],
        id="port-overflows-65535",
    ),
    pytest.param(
        "members: {bank-a: {validators: 2, spares: 9}}\n",
        ["members.bank-a.spares", "9 is not allowed", "less than or equal to 8"],
        id="too-many-spares",
    ),
    pytest.param(
        "ports: {http: 9000, health: 9001}\nmembers: {bank-a: {validators: 1}}\n",
        ["ports", "port clash", "http port 9001 of node bank-a-2", "health port of node bank-a-1"],
        id="health-and-http-bases-clash",
    ),
    pytest.param(
        ONE_MEMBER + "supervision: {lease_seconds: 10}\n",
        ["supervision.lease_seconds", "10 is not allowed", "greater than or equal to 15"],
        id="lease-below-azure-minimum",
    ),
    pytest.param(
        ONE_MEMBER + "supervision: {lease_seconds: 61}\n",
        ["supervision.lease_seconds", "61 is not allowed", "less than or equal to 60"],
        id="lease-above-azure-maximum",
    ),
    pytest.param(
        ONE_MEMBER + "supervision: {lease: 20}\n",
        ["supervision.lease", "unknown key", "lease_seconds, heartbeat_seconds"],
        id="unknown-supervision-key",
    ),
    pytest.param(
        ONE_MEMBER + "tuning: {recommit_seconds: 0.5}\n",
        ["tuning.recommit_seconds", "0.5 is not allowed", "greater than or equal to 1"],
        id="recommit-below-geths-minimum",
    ),
    pytest.param(
        ONE_MEMBER + "tuning: {cache: 256}\n",
        ["tuning.cache", "unknown key", "cache_mb"],
        id="unknown-tuning-key",
    ),
    pytest.param(
        ONE_MEMBER + "tuning: {txpool_global_slots: 0}\n",
        ["tuning.txpool_global_slots", "0 is not allowed"],
        id="empty-txpool",
    ),
    pytest.param(
        "members: {bank-a: {validators: 0, rpc_nodes: 1}, bank-b: {validators: 0}}\n",
        ["members", "no validator", "validators: 1"],
        id="no-validators",
    ),
    pytest.param(
        "members:\n  bank-a: {validators: 2\n  bank-b: {}\n",
        ["not valid YAML", "line 3"],
        id="broken-yaml-syntax",
    ),
    pytest.param(
        "- members\n- bank-a\n", ["expected a mapping", "got list", "members:"], id="top-level-list"
    ),
    pytest.param("", ["the file is empty", "members:"], id="empty-document"),
    pytest.param("# nothing but a comment\n", ["the file is empty"], id="comment-only-document"),
    pytest.param("42\n", ["expected a mapping", "got int", "members:"], id="top-level-scalar"),
    pytest.param(
        "members:\n  bank-a: {validators: 1}\n  bank-a: {validators: 2}\n",
        ["not valid YAML", "'bank-a'", "given twice", "line 3"],
        id="member-listed-twice",
    ),
    pytest.param(
        ONE_MEMBER + "block_period: 2\nblock_period: 3\n",
        ["not valid YAML", "'block_period'", "given twice"],
        id="top-level-key-twice",
    ),
    pytest.param(
        "members: {bank-a: {validators: 1, validators: 2}}\n",
        ["'validators'", "given twice"],
        id="member-setting-twice",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_DOCUMENTS)
def test_bad_document_names_key_and_value(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="my-consortium.yaml")
    message = str(caught.value)
    assert message.startswith("my-consortium.yaml")  # the file is named too
    for part in expected:
        assert part in message, f"{part!r} missing from: {message}"
    assert "\n  hint: " in message


def test_unreadable_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "consortium.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(missing) in str(caught.value)
    assert "cannot read" in str(caught.value)
    assert "No such file or directory" in str(caught.value)


def test_directory_given_as_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the consortium file"):
        load_config(tmp_path)


def test_load_config_from_a_file_records_its_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(ONE_MEMBER)
    c = load_config(path)
    assert c.source == str(path)
    assert [n.name for n in c.nodes] == ["bank-a-1", "bank-a-2"]  # the identity and a spare


# -- canonical() ----------------------------------------------------------------------


def test_canonical_is_stable_across_key_order_and_layout() -> None:
    block_style = """
block_period: 5
chain_id: 99
members:
  bank-b:
    rpc_nodes: 1
    validators: 1
  bank-a:
    validators: 2
ports:
  http: 9545
  p2p: 31303
"""
    flow_style = """
ports: {p2p: 31303, http: 9545}
members: {bank-b: {validators: 1, rpc_nodes: 1}, bank-a: {validators: 2}}
chain_id: 99
block_period: 5
epoch: 30000
"""
    a = parse_config(block_style, source="a")
    b = parse_config(flow_style, source="b")
    assert a.canonical() == b.canonical()
    assert "block_period: 5\n" in a.canonical()


def test_canonical_differs_when_a_setting_differs() -> None:
    a = parse_config(ONE_MEMBER + "block_period: 5\n", source="a")
    b = parse_config(ONE_MEMBER + "block_period: 6\n", source="a")
    assert a.canonical() != b.canonical()


def test_canonical_round_trips() -> None:
    c = load_config()
    again = parse_config(c.canonical(), source="recorded")
    assert again.canonical() == c.canonical()
    assert again.nodes == c.nodes


def test_with_balancers_each_bank_gets_three_ports_and_each_node_a_peering_port() -> None:
    text = "members: {bank-a: {validators: 2}, bank-b: {validators: 1}}\nbalancer: {}\n"
    c = parse_config(text, source="c.yaml")
    assert c.settings.balancer is not None and c.settings.balancer.peering
    assert c.balancer_ports("bank-a") == (8645, 8665, 8666)
    assert c.balancer_ports("bank-b") == (8646, 8667, 8668)
    assert [n.peer_port for n in c.nodes] == [30403, 30404, 30405, 30406, 30407]


def test_a_balancer_port_that_clashes_is_refused() -> None:
    text = "ports: {balancer: 8546}\nmembers: {bank-a: {validators: 2}}\nbalancer: {}\n"
    with pytest.raises(ConfigError, match="balancer port of bank-a would be 8546, which is http"):
        parse_config(text, source="c.yaml")
