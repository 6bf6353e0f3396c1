"""docs/credit.md's ethers example, run as written with Node.js and ethers 6 (installed into
.tools/node by scripts/setup.sh) against a real registry: an application without the SDK
packs its records with the registry's `pack` and writes them, and the SDK reads back
exactly the records the SDK itself would have written."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.credit import CreditClient, Record
from tests.credit.conftest import Chain

pytestmark = [pytest.mark.geth, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
MARKER = "<!-- example: ethers -->"


def example() -> str:
    """The JavaScript block that follows the marker in docs/credit.md."""
    text = (ROOT / "docs" / "credit.md").read_text()
    found = re.search(re.escape(MARKER) + r"\n```js\n(.*?)\n```", text, re.S)
    assert found, f"no ```js block after {MARKER} in docs/credit.md"
    return found.group(1)


def test_the_docs_ethers_example_writes_what_the_sdk_reads(
    chain: Chain, registry: str, bank_a: CreditClient, bank_b: CreditClient, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs ethers with npm)"
    assert (NODE_MODULES / "ethers").is_dir(), "run scripts/setup.sh: it installs ethers"
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)  # how `import "ethers"` resolves
    script = tmp_path / "report.mjs"
    script.write_text(example())
    env = os.environ | {
        "RPC_URL": chain.rpc_url,
        "REGISTRY": registry,
        "ACCOUNT_KEY": chain.keys["bank_a"].value,
        "PSEUDONYM_SECRET": chain.pseudonym_secret.value,
    }
    env.pop("RPC_TOKEN", None)
    done = subprocess.run(
        [node, str(script)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^report: block \d+$", done.stdout, re.M), done.stdout
    assert re.search(r"^furnish: block \d+$", done.stdout, re.M), done.stdout

    loan = Record(
        account_ref="LOAN-0001",
        portfolio_type="I",
        account_type="00",
        date_opened=dt.date(2023, 1, 15),
        date_of_account_information=dt.date(2024, 5, 31),
        highest_credit=20_000,
        current_balance=15_000,
        account_status="11",
        payment_history="000000000000BBBBBBBBBBBB",
    )
    card = Record(
        account_ref="CARD-77",
        portfolio_type="R",
        account_type="18",
        date_opened=loan.date_opened,
        date_of_account_information=loan.date_of_account_information,
        credit_limit=5_000,
        highest_credit=4_200,
        current_balance=1_200,
        account_status="11",
        payment_history=loan.payment_history,
    )
    expected = [
        ("123-45-6789", loan),
        ("987 65 4321", card),
        ("AB-123456-C", Record(**{**card.__dict__, "account_ref": "CARD-78"})),
    ]
    for national_id, record in expected:
        line = bank_b.tradeline(bank_b.subject(national_id), bank_a.furnisher, record.account_ref)
        assert line is not None, national_id
        assert (line.record, line.version) == (record, 1)
