"""checkov (PyPI) on the Azure template, offline: no failed check, every skipped check
with its reason inline in the template, and nothing left unparsed (checkov exits 0 on a
file it cannot parse, so the summary is what counts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.azure.conftest import INFRA, load_template

CHECKOV = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "checkov"

pytestmark = pytest.mark.skipif(
    not CHECKOV.exists(), reason="checkov is not installed (scripts/setup.sh installs it)"
)


def scan(directory: Path) -> dict[str, Any]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "arm", "--skip-download",
         "--compact", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The committed template alone (parameter files are not ARM templates)."""
    folder = tmp_path_factory.mktemp("infra")
    shutil.copy(INFRA / "poactl-bank.json", folder / "poactl-bank.json")
    return scan(folder)


def test_checkov_passes_the_template_with_reasons_for_every_skip(report: dict[str, Any]) -> None:
    summary = report["summary"]
    print(f"checkov {summary['checkov_version']}: {summary}")
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, [
        (c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]
    ]
    assert summary["resource_count"] == len(load_template()["resources"])
    assert summary["passed"] >= 20
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 40, f"{check['check_id']} is skipped without a reason"


def test_checkov_fails_a_template_that_opens_the_storage_account(tmp_path: Path) -> None:
    template = load_template()
    storage = next(
        r for r in template["resources"] if r["type"] == "Microsoft.Storage/storageAccounts"
    )
    storage["properties"]["minimumTlsVersion"] = "TLS1_0"
    storage["properties"]["networkAcls"]["defaultAction"] = "Allow"
    (tmp_path / "t.json").write_text(json.dumps(template))
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_AZURE_44", "CKV_AZURE_35"} <= failed
