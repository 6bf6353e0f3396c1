"""The poactl command line without geth: errors, exit codes, and what it refuses to do."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import main
from orchestrator.config import load_config

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def keep_root_log_level() -> Iterator[None]:
    """`poactl agent` lowers the root logger's level; give the rest of the session its own."""
    root = logging.getLogger()
    saved = root.level
    yield
    root.setLevel(saved)  # setLevel also clears the loggers' cached levels


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    # Make sure nothing from the caller's environment picks a real state dir or geth.
    monkeypatch.delenv("POACTL_STATE_DIR", raising=False)
    monkeypatch.setenv("POACTL_GETH", "/nonexistent/geth-for-unit-tests")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input)

    return invoke


def test_help_lists_the_public_commands_only(run: Invoke) -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    commands_section = result.output.split("Commands:", 1)[1]
    names = [line.split()[0] for line in commands_section.splitlines() if line.strip()]
    assert sorted(names) == [
        "agent", "azure", "balancer", "contracts", "credit", "demo", "destroy", "down", "index",
        "join", "lab", "logs", "members", "monitor", "serve-data", "status", "up",
    ]  # fmt: skip
    assert "supervise" not in result.output


def test_supervise_is_gone(run: Invoke) -> None:
    result = run("supervise", "--node", "bank-a-1")
    assert result.exit_code == 2  # click's usage error
    assert "No such command 'supervise'" in result.stderr


def test_agent_with_a_missing_config_names_the_file(run: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = run("agent", "--config", str(missing))
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert "cannot read the agent file" in result.stderr
    assert "hint: " in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing created on the way out


def test_agent_with_an_invalid_config_names_the_key(run: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "member: bank-a\nnode: bank-a-1\nstate_dir: s\nconsortium_file: c.yaml\n"
        "ports: {p2p: 30303, http: 8545, authrpc: 8651, health: 8745}\n"
        "store: {kind: local}\nvault: {kind: local, path: v}\n"
    )
    result = run("agent", "--config", str(config))
    assert result.exit_code == 1
    assert str(config) in result.stderr
    assert "store: a local store needs 'path'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.yaml"]  # no state dir made


def _stopped_consortium(state: Path) -> Path:
    """A state dir holding the default consortium's settings and one node's logs."""
    state.mkdir()
    (state / "consortium.yaml").write_text(load_config().canonical())
    node = state / "nodes" / "bank-a-2"
    node.mkdir(parents=True)
    (node / "geth.log").write_text("".join(f"geth line {i}\n" for i in range(1, 101)))
    (node / "agent.log").write_text("agent: BOOTING -> WAITING_FOR_NETWORK\n")
    return node


def test_logs_shows_the_last_lines_of_a_nodes_geth_log(run: Invoke, tmp_path: Path) -> None:
    _stopped_consortium(tmp_path / "state")
    result = run("logs", "--state-dir", str(tmp_path / "state"), "bank-a-2", "-n", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["geth line 98", "geth line 99", "geth line 100"]


def test_logs_agent_shows_the_agents_log(run: Invoke, tmp_path: Path) -> None:
    _stopped_consortium(tmp_path / "state")
    result = run("logs", "--state-dir", str(tmp_path / "state"), "bank-a-2", "--agent")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["agent: BOOTING -> WAITING_FOR_NETWORK"]


def test_logs_of_an_unknown_node_lists_the_known_ones(run: Invoke, tmp_path: Path) -> None:
    _stopped_consortium(tmp_path / "state")
    result = run("logs", "--state-dir", str(tmp_path / "state"), "bank-c-1")
    assert result.exit_code == 1
    assert "bank-c-1: no such node" in result.stderr
    assert "bank-a-1, bank-a-2, bank-a-3, bank-b-1, bank-b-2, bank-b-3" in result.stderr


def test_logs_without_a_consortium_says_to_run_up(run: Invoke, tmp_path: Path) -> None:
    result = run("logs", "--state-dir", str(tmp_path), "bank-a-1")
    assert result.exit_code == 1
    assert "no consortium here" in result.stderr
    assert "poactl up" in result.stderr


def test_status_of_an_empty_state_dir_says_to_run_up(run: Invoke, tmp_path: Path) -> None:
    result = run("status", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no consortium here" in result.stderr
    assert "poactl up" in result.stderr
    assert str(tmp_path) in result.stderr
    assert result.stdout == ""


def test_status_of_a_missing_state_dir_says_to_run_up(run: Invoke, tmp_path: Path) -> None:
    result = run("status", "--state-dir", str(tmp_path / "absent"))
    assert result.exit_code == 1
    assert "poactl up" in result.stderr
    assert not (tmp_path / "absent").exists()


def test_down_of_an_empty_state_dir_is_an_error(run: Invoke, tmp_path: Path) -> None:
    result = run("down", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no consortium here" in result.stderr


@pytest.mark.parametrize("precreate", [False, True], ids=["absent-dir", "empty-dir"])
def test_up_with_a_bad_config_names_the_problem_and_creates_nothing(
    run: Invoke, tmp_path: Path, precreate: bool
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("members: {bank-a: {validators: 2}}\nblock_period: 0\n")
    state = tmp_path / "state"
    if precreate:
        state.mkdir()
    result = run("up", "--config", str(config), "--state-dir", str(state))
    assert result.exit_code == 1
    assert "block_period" in result.stderr
    assert "0 is not allowed" in result.stderr
    assert str(config) in result.stderr
    assert not state.exists() or list(state.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bad.yaml"] + (["state"] if precreate else [])
    )  # no staging sibling left behind either


def test_up_with_a_missing_config_file_fails_cleanly(run: Invoke, tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run("up", "--config", str(tmp_path / "nope.yaml"), "--state-dir", str(state))
    assert result.exit_code == 1
    assert "cannot read the consortium file" in result.stderr
    assert not state.exists()


def test_up_refuses_a_non_empty_foreign_directory(run: Invoke, tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    result = run("up", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_destroy_refuses_a_directory_holding_no_consortium(run: Invoke, tmp_path: Path) -> None:
    precious = tmp_path / "thesis.tex"
    precious.write_text("precious")
    result = run("destroy", "--state-dir", str(tmp_path), "--yes")
    assert result.exit_code == 1
    assert "refusing to delete" in result.stderr
    assert precious.read_text() == "precious"


def test_destroy_asks_first_and_keeps_everything_on_no(run: Invoke, tmp_path: Path) -> None:
    precious = tmp_path / "thesis.tex"
    precious.write_text("precious")
    result = run("destroy", "--state-dir", str(tmp_path), input="n\n")
    assert result.exit_code == 1
    assert "Delete" in result.output
    assert precious.exists()


def test_destroy_deletes_a_stopped_consortium(run: Invoke, tmp_path: Path) -> None:
    """A state dir with the recorded config and network file, no process running."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "consortium.yaml").write_text(load_config().canonical())
    (state / "network.json").write_text(json.dumps({"version": 1, "chain_id": 7272, "nodes": []}))
    (state / "nodes" / "bank-a-1").mkdir(parents=True)
    result = run("destroy", "--state-dir", str(state), "--yes")
    assert result.exit_code == 0, result.output
    assert f"destroyed {state}" in result.stdout
    assert not state.exists()


def test_version(run: Invoke) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert "poactl" in result.output
    assert "0.1.0" in result.output
