"""The shipped agent.example.yaml is a valid agent file (it documents every key)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from orchestrator.agent.settings import AgentFile, load_agent_config


def test_the_shipped_example_is_valid_and_documents_every_top_level_key(tmp_path: Path) -> None:
    text = resources.files("orchestrator").joinpath("agent.example.yaml").read_text()
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    settings = load_agent_config(path)
    assert settings.store.kind == "azure" and settings.vault.kind == "azure"
    for key in AgentFile.model_fields:
        assert f"\n{key}:" in text, f"agent.example.yaml does not document {key!r}"
