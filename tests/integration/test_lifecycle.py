"""A one-signer consortium from up to destroy (the sealing gate's only-signer path)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.local.consortium import LocalConsortium
from tests.helpers.ports import consortium_yaml
from tests.helpers.processes import processes_mentioning

pytestmark = pytest.mark.geth

MakeConsortium = Callable[..., tuple[LocalConsortium, Path]]


def test_single_signer_with_an_rpc_node_up_status_destroy(make_consortium: MakeConsortium) -> None:
    local, config = make_consortium(consortium_yaml({"solo": 1}, rpc_nodes=1))
    root = str(local.layout.root)

    up = CliRunner().invoke(main, ["up", "--config", str(config), "--state-dir", root])
    assert up.exit_code == 0, up.output
    assert "solo:" in up.output

    status = CliRunner().invoke(main, ["status", "--state-dir", root, "--format", "json"])
    assert status.exit_code == 0, status.output
    nodes = {n["name"]: n for n in json.loads(status.output)["nodes"]}
    assert nodes["solo-1"]["role"] == "validator" and nodes["solo-1"]["sealing"] is True
    assert nodes["solo-2"]["role"] == "rpc" and nodes["solo-2"]["signer"] is None
    assert nodes["solo-2"]["sealing"] is False and nodes["solo-2"]["healthy"] is True

    refused = CliRunner().invoke(main, ["destroy", "--state-dir", root], input="n\n")
    assert refused.exit_code == 1 and local.layout.root.exists()

    destroyed = CliRunner().invoke(main, ["destroy", "--state-dir", root, "--yes"])
    assert destroyed.exit_code == 0, destroyed.output
    assert not local.layout.root.exists()
    assert processes_mentioning(root) == []
