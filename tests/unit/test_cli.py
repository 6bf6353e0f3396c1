"""The poactl command line without geth: errors, exit codes, and what it refuses to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.config import load_config

Invoke = Callable[..., Result]


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
    assert sorted(names) == ["destroy", "down", "status", "up"]
    assert "supervise" not in result.output


def test_hidden_supervise_command_still_exists(run: Invoke) -> None:
    result = run("supervise", "--help")
    assert result.exit_code == 0
    assert "--node" in result.output


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
