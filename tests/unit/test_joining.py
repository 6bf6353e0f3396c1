"""What `poactl join` refuses before it touches anything (orchestrator.network.join,
orchestrator.local.join), and a state dir from before each bank had its own store."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, StateError
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.data import shown_url
from orchestrator.network.join import fetch_network
from orchestrator.store.published import DirectoryData


def test_a_bad_member_name_is_refused_naming_the_rule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'Bank_C' is not a member name") as e:
        fetch_network(DirectoryData(tmp_path), tmp_path.as_uri(), joining="Bank_C")
    assert "lowercase" in (e.value.hint or "")


def test_a_sas_signature_is_never_shown(tmp_path: Path) -> None:
    url = "https://bankb.blob.core.windows.net/consortium?sv=2022&sig=SECRET"
    assert shown_url(url) == "https://bankb.blob.core.windows.net/consortium?<signature hidden>"
    with pytest.raises(ConfigError) as e:
        fetch_network(DirectoryData(tmp_path), url, joining="bank-c")
    assert "SECRET" not in str(e.value) and "no consortium data" in str(e.value)


def test_a_state_dir_with_one_shared_store_is_named_as_such(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "consortium.yaml").write_text("members:\n  bank-a: {validators: 1}\n")
    (root / "store.sqlite").write_bytes(b"")
    local = LocalConsortium(root)
    for call in (local.status, local.up):
        with pytest.raises(StateError, match="one store shared by every bank"):
            call()
    assert local.down() == []  # stopping it still works
