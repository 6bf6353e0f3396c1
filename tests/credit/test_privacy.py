"""No national ID on chain: after writes through the SDK and the CLI with every test ID,
scan every block's transaction inputs and every receipt's logs for the IDs' bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli.credit import credit
from orchestrator.credit import CreditClient
from orchestrator.credit.records import record_to_mapping
from tests.credit.conftest import NATIONAL_IDS, Chain, record
from tests.credit.scan import scan

pytestmark = [pytest.mark.geth, pytest.mark.slow]


def test_no_national_id_appears_on_chain(
    chain: Chain,
    registry: str,
    bank_a: CreditClient,
    bank_b: CreditClient,
    tmp_path: Path,
) -> None:
    # Writes with every ID: reports, a dispute and its resolution through the SDK, ...
    pending = []
    for i, national_id in enumerate(NATIONAL_IDS):
        pending.append(bank_a.report(bank_a.subject(national_id), record(f"PRIV-{i}")))
    for p in pending:
        p.wait()
    subject = bank_b.subject(NATIONAL_IDS[0])
    bank_b.dispute(subject, bank_a.furnisher, "PRIV-0").wait()
    bank_a.resolve(subject, "PRIV-0").wait()
    # ... and a report through the CLI, which takes the raw ID on its command line.
    key = tmp_path / "b.key"
    key.write_text(chain.keys["bank_b"].value)
    secret = tmp_path / "secret"
    secret.write_text(chain.pseudonym_secret.value)
    for f in (key, secret):
        f.chmod(0o600)
    record_file = tmp_path / "r.yaml"
    record_file.write_text(yaml.safe_dump(record_to_mapping(record("PRIV-CLI"))))
    result = CliRunner().invoke(
        credit,
        [
            "--rpc-url", chain.rpc_url, "--registry", registry, "--key-file", str(key),
            "--secret-file", str(secret), "report", "--bank", "bank-b",
            "--subject", NATIONAL_IDS[1], "--file", str(record_file),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    subjects = {bank_a.subject(nid) for nid in NATIONAL_IDS}
    leaks, scanned = scan(chain.w3(), NATIONAL_IDS, subjects)  # also: it found the writes
    assert not leaks, leaks
    assert scanned > 3 * len(NATIONAL_IDS)
