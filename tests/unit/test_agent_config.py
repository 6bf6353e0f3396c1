"""agent.yaml: a good file round trip, and every rejected document names key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.agent.settings import AgentFile, load_agent_config
from orchestrator.config import validate_yaml
from orchestrator.errors import ConfigError

LOCAL = """\
member: bank-a
node: bank-a-1
state_dir: /srv/poactl/bank-a-1
consortium_file: /etc/poactl/consortium.yaml
ports: {p2p: 30303, http: 8545, authrpc: 8651, health: 8745}
store: {kind: local, path: /srv/poactl/store.sqlite}
vault: {kind: local, path: /srv/poactl/vault}
"""

AZURE = """\
member: bank-b
node: bank-b-2
role: rpc
state_dir: /var/lib/poactl
consortium_file: /etc/poactl/consortium.yaml
host: 10.0.0.5
ports: {p2p: 30303, http: 8545, authrpc: 8551, health: 8080}
lease_seconds: 30
heartbeat_seconds: 30
store:
  kind: azure
  account_url: https://bankb.blob.core.windows.net
  container: consortium
  account_key_file: /etc/poactl/storage.key
boot_timeout_seconds: 120
vault:
  kind: azure
  url: https://bankb.vault.azure.net
  ca_file: /etc/poactl/emulator-ca.pem
  verify_challenge_resource: false
runtime: {kind: docker, image: registry.example/geth:v1.13.15}
"""


def _load(text: str, tmp_path: Path) -> AgentFile:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return load_agent_config(path)


def _error(text: str, tmp_path: Path) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message  # the file is named
    assert "\n  hint: " in message
    return message


# -- good files ----------------------------------------------------------------------


def test_a_local_agent_file_with_string_paths_becomes_paths_and_defaults(tmp_path: Path) -> None:
    a = _load(LOCAL, tmp_path)
    assert (a.member, a.node, a.role) == ("bank-a", "bank-a-1", "validator")
    assert a.state_dir == Path("/srv/poactl/bank-a-1")
    assert a.consortium_file == Path("/etc/poactl/consortium.yaml")
    assert a.store.path == Path("/srv/poactl/store.sqlite")
    assert a.vault.path == Path("/srv/poactl/vault")
    assert (a.ports.p2p, a.ports.http, a.ports.authrpc, a.ports.health) == (
        30303,
        8545,
        8651,
        8745,
    )
    assert a.host == "127.0.0.1"
    assert a.lease_seconds == 15
    assert a.heartbeat_seconds == 60.0
    assert a.boot_timeout_seconds == 300.0
    assert a.vault.ca_file is None
    assert a.vault.verify_challenge_resource is True
    assert a.runtime.kind == "process"
    assert a.runtime.geth is None  # located at start: .tools/bin/geth, then PATH


def test_an_azure_agent_file_keeps_every_setting(tmp_path: Path) -> None:
    a = _load(AZURE, tmp_path)
    assert a.role == "rpc"
    assert a.host == "10.0.0.5"
    assert (a.lease_seconds, a.heartbeat_seconds) == (30, 30.0)
    assert a.store.kind == "azure"
    assert a.store.account_url == "https://bankb.blob.core.windows.net"
    assert a.store.container == "consortium"
    assert a.store.account_key_file == Path("/etc/poactl/storage.key")
    assert a.store.path is None
    assert (a.vault.kind, a.vault.url) == ("azure", "https://bankb.vault.azure.net")
    assert a.vault.ca_file == Path("/etc/poactl/emulator-ca.pem")
    assert a.vault.verify_challenge_resource is False
    assert a.boot_timeout_seconds == 120.0
    assert (a.runtime.kind, a.runtime.image) == ("docker", "registry.example/geth:v1.13.15")


@pytest.mark.parametrize("text", [LOCAL, AZURE], ids=["local", "azure"])
def test_round_trip_through_yaml(text: str, tmp_path: Path) -> None:
    first = _load(text, tmp_path)
    dumped = yaml.safe_dump(first.model_dump(mode="json"), sort_keys=True)
    assert "/srv/poactl" in dumped or "/var/lib/poactl" in dumped  # paths dump as strings
    again = validate_yaml(AgentFile, dumped, source="dumped")
    assert again == first
    assert yaml.safe_dump(again.model_dump(mode="json"), sort_keys=True) == dumped


# -- rejected files ------------------------------------------------------------------

BAD = [
    pytest.param(
        LOCAL.replace(
            "store: {kind: local, path: /srv/poactl/store.sqlite}", "store: {kind: local}"
        ),
        ["store: a local store needs 'path'", "SQLite file"],
        id="local-store-without-path",
    ),
    pytest.param(
        LOCAL.replace(
            "store: {kind: local, path: /srv/poactl/store.sqlite}", "store: {kind: azure}"
        ),
        ["store: an azure store needs 'account_url'"],
        id="azure-store-without-account-url",
    ),
    pytest.param(
        LOCAL.replace("vault: {kind: local, path: /srv/poactl/vault}", "vault: {kind: local}"),
        ["vault: a local vault needs 'path'", "directory"],
        id="local-vault-without-path",
    ),
    pytest.param(
        LOCAL.replace("vault: {kind: local, path: /srv/poactl/vault}", "vault: {kind: azure}"),
        ["vault: an azure vault needs 'url'"],
        id="azure-vault-without-url",
    ),
    pytest.param(
        LOCAL.replace("store: {kind: local,", "store: {kind: sqlite,"),
        ["store.kind", "'sqlite' is not allowed", "'local' or 'azure'"],
        id="unknown-store-kind",
    ),
    pytest.param(
        LOCAL + "nod: bank-a-9\n",
        [
            "nod: unknown key",
            "allowed here: member, node, role, state_dir, consortium_file, host, advertise, "
            "peer_network, "
            "rpc_host, health_host, ports, lease_seconds, heartbeat_seconds, "
            "boot_timeout_seconds, store, vault, runtime",
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        LOCAL.replace("store: {kind: local,", "store: {kind: local, paht: x,"),
        [
            "store.paht: unknown key",
            "allowed here: kind, path, account_url, container, account_key_file",
        ],
        id="unknown-store-key",
    ),
    pytest.param(
        LOCAL.replace("health: 8745}", "health: 8745, prometheus: 9090}"),
        ["ports.prometheus: unknown key", "allowed here: p2p, http, authrpc, health, metrics"],
        id="unknown-ports-key",
    ),
    pytest.param(
        LOCAL + "lease_seconds: 10\n",
        ["lease_seconds", "10 is not allowed", "greater than or equal to 15"],
        id="lease-10",
    ),
    pytest.param(
        LOCAL + "lease_seconds: 61\n",
        ["lease_seconds", "61 is not allowed", "less than or equal to 60"],
        id="lease-61",
    ),
    pytest.param(
        LOCAL.replace(", health: 8745}", "}"),
        ["ports.health: required key is missing"],
        id="missing-health-port",
    ),
    pytest.param(
        LOCAL.replace("member: bank-a\n", ""),
        ["member: required key is missing"],
        id="missing-member",
    ),
    pytest.param(
        LOCAL.replace("node: bank-a-1", "node: Bank_A_1"),
        ["node", "'Bank_A_1' is not allowed", "pattern"],
        id="bad-node-name",
    ),
    pytest.param(
        LOCAL + "role: spare\n",
        ["role", "'spare' is not allowed", "'validator' or 'rpc'"],
        id="spare-is-not-a-role",
    ),
    pytest.param(
        LOCAL + "node: bank-a-2\n",
        ["not valid YAML", "'node'", "given twice", "line 8"],
        id="key-given-twice",
    ),
    pytest.param(
        LOCAL.replace("vault: {kind: local,", "vault: {kind: local, tls_verify: false,"),
        [
            "vault.tls_verify: unknown key",
            "allowed here: kind, path, url, ca_file, verify_challenge_resource",
        ],
        id="tls-verify-is-now-ca-file",
    ),
    pytest.param(
        LOCAL + "boot_timeout_seconds: 0\n",
        ["boot_timeout_seconds", "0 is not allowed", "greater than 0"],
        id="boot-timeout-0",
    ),
    pytest.param("", ["the file is empty", "'member:'", "'store:'"], id="empty-file"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_agent_file_names_key_and_fix(text: str, expected: list[str], tmp_path: Path) -> None:
    message = _error(text, tmp_path)
    for part in expected:
        assert part in message, f"{part!r} missing from: {message}"


def test_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    text = LOCAL.replace("ports: {p2p: 30303,", "ports: [{p2p: 30303,")  # line 5 never closes
    message = _error(text, tmp_path)
    assert "not valid YAML at line 6, column 1" in message
    assert "fix the YAML syntax" in message


def test_a_missing_agent_file_names_the_path_and_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "etc" / "agent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_agent_config(missing)
    message = str(caught.value)
    assert message.startswith(str(missing))
    assert "cannot read the agent file (No such file or directory)" in message
    assert "--config" in message


def test_agent_file_errors_do_not_point_at_the_consortium_example(tmp_path: Path) -> None:
    message = _error(LOCAL + "lease_seconds: 10\n", tmp_path)
    hint = message.split("hint:", 1)[1]
    assert "consortium.yaml" not in hint and "orchestrator/agent.example.yaml" in hint
