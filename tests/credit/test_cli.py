"""`credit` commands through click's CliRunner against the real geth fixture."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from orchestrator.boundaries import Secret
from orchestrator.cli.credit import RESOLVER_FACTORY_KEY, RESOLVER_KEY, credit
from orchestrator.credit import CreditClient, record_from_mapping
from orchestrator.credit.access import BankAccess, BankResolver
from orchestrator.errors import StateError
from tests.credit.conftest import Chain, record
from tests.helpers.index import index_url, running_index

pytestmark = [pytest.mark.geth, pytest.mark.slow]

NATIONAL_ID = "AB-123456-C"


def run(chain: Chain, registry: str, files: dict[str, Path], who: str, *args: str) -> Result:
    options = [
        "--rpc-url", chain.rpc_url,
        "--registry", registry,
        "--key-file", str(files[who]),
        "--secret-file", str(files["secret"]),
    ]  # fmt: skip
    return CliRunner().invoke(credit, [*options, *args])


def test_report_then_get_from_another_bank(
    chain: Chain, registry: str, files: dict[str, Path], bank_b: CreditClient
) -> None:
    result = run(
        chain, registry, files, "bank_a",
        "report", "--bank", "bank-a", "--subject", NATIONAL_ID, "--file", str(files["record"]),
        "--confirmations", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("bank-a reported CLI-LOAN: tx 0x")
    assert "(gas " in result.output and "1 confirmations" in result.output

    result = run(
        chain, registry, files, "bank_b", "get", "--bank", "bank-b", "--subject", NATIONAL_ID
    )
    assert result.exit_code == 0, result.output
    assert "CLI-LOAN" in result.output
    assert "summary: 1 accounts (1 open) from 1 banks, balance 15000" in result.output
    assert "worst status 11 (current (0-29 days past due))" in result.output

    result = run(
        chain, registry, files, "bank_b",
        "get", "--bank", "bank-b", "--subject", NATIONAL_ID, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    subject = bank_b.subject(NATIONAL_ID)
    assert doc["subject"] == "0x" + subject.hex()
    (line,) = doc["tradelines"]
    assert record_from_mapping(line["record"]) == record("CLI-LOAN")
    assert line["furnisher"] == chain.addresses["gov_a"]  # the bank: its admin account
    assert doc["summary"]["accounts"] == 1

    # The pseudonym itself works as --subject too.
    result = run(
        chain, registry, files, "bank_b", "get", "--bank", "b", "--subject", doc["subject"]
    )
    assert result.exit_code == 0 and "CLI-LOAN" in result.output


def test_dispute_resolve_and_history(
    chain: Chain, registry: str, files: dict[str, Path], bank_a: CreditClient
) -> None:
    subject = bank_a.subject("CLI-DISPUTE-1")
    bank_a.report(subject, record("CLI-D")).wait()
    a = chain.addresses["gov_a"]  # bank A itself: its admin account
    result = run(
        chain, registry, files, "bank_b",
        "dispute", "--bank", "bank-b", "--subject", "CLI-DISPUTE-1", "--furnisher", a,
        "--account-ref", "CLI-D", "--code", "XB",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"bank-b disputed {a}/CLI-D (XB): tx 0x" in result.output

    # Bank B cannot resolve bank A's tradeline: the registry's reason, plainly.
    result = run(
        chain, registry, files, "bank_b",
        "resolve", "--bank", "bank-b", "--subject", "CLI-DISPUTE-1", "--account-ref", "CLI-D",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "error: the registry refused: UnknownTradeline(" in result.output  # B has no CLI-D

    result = run(
        chain, registry, files, "bank_a",
        "resolve", "--bank", "bank-a", "--subject", "CLI-DISPUTE-1", "--account-ref", "CLI-D",
        "--code", "XC",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    result = run(
        chain, registry, files, "bank_b",
        "history", "--bank", "bank-b", "--subject", "CLI-DISPUTE-1", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    changes = [(e["change"], e["version"], e["record"]["compliance_condition"]) for e in
               json.loads(result.output)]  # fmt: skip
    assert changes == [("reported", 1, ""), ("disputed", 2, "XB"), ("resolved", 3, "XC")]
    table = run(
        chain, registry, files, "bank_b", "history", "--bank", "b", "--subject", "CLI-DISPUTE-1"
    )
    assert table.exit_code == 0 and table.output.count("\n") == 3 + 1
    assert "v2  disputed" in table.output
    assert table.output.endswith("(read from the node)\n")  # no read index given


def test_errors_map_to_exit_codes_and_plain_messages(
    chain: Chain, registry: str, files: dict[str, Path], tmp_path: Path
) -> None:
    report = ["report", "--bank", "bank-c", "--subject", NATIONAL_ID]
    result = run(chain, registry, files, "bank_c", *report, "--file", str(files["record"]))
    assert result.exit_code == 1
    assert "error: the registry refused: NotMember(account=" in result.output
    assert "hint: this account does not write for a member bank" in result.output

    result = run(chain, registry, files, "bank_a", *report, "--file", str(files["bad"]))
    assert result.exit_code == 1
    assert "error: account_status: '99' is not allowed; expected 05, 11, 13" in result.output

    result = run(chain, registry, files, "bank_a", "get", "--bank", "a", "--subject", "12/34/5678")
    assert result.exit_code == 1
    assert "national_id" in result.output and "12/34/5678" not in result.output

    loose = tmp_path / "loose.key"
    loose.write_text(chain.keys["bank_a"].value)
    loose.chmod(0o644)
    result = CliRunner().invoke(
        credit,
        [
            "--rpc-url", chain.rpc_url, "--registry", registry, "--key-file", str(loose),
            "--secret-file", str(files["secret"]), "get", "--bank", "a", "--subject", NATIONAL_ID,
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"chmod 600 {loose}" in result.output
    assert chain.keys["bank_a"].value not in result.output

    result = CliRunner().invoke(credit, ["get", "--bank", "a", "--subject", NATIONAL_ID])
    assert result.exit_code == 1
    assert "error: --rpc-url: no --rpc-url for a" in result.output


def test_a_resolver_from_the_main_cli_is_used_and_options_override_it(
    chain: Chain, registry: str, files: dict[str, Path], bank_a: CreditClient
) -> None:
    """How the main CLI attaches the group: a parent puts a resolver in ctx.meta."""

    class Consortium:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def resolve(self, bank: str) -> BankAccess:
            self.asked.append(bank)
            return BankAccess(
                rpc_url=chain.rpc_url,
                registry=registry,
                account_key=chain.keys[bank.replace("-", "_")],
                pseudonym_secret=Secret(chain.pseudonym_secret.value),
                names={chain.addresses["gov_a"]: "bank-a", chain.addresses["gov_b"]: "bank-b"},
            )

    resolver = Consortium()

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.meta[RESOLVER_KEY] = resolver

    main.add_command(credit)
    subject = bank_a.subject("RESOLVER-1")
    bank_a.report(subject, record("R-1")).wait()

    result = CliRunner().invoke(
        main, ["credit", "get", "--bank", "bank-b", "--subject", "RESOLVER-1"]
    )
    assert result.exit_code == 0, result.output
    assert "\nbank-a  R-1 " in result.output  # furnisher shown by name
    assert resolver.asked == ["bank-b"]

    result = CliRunner().invoke(
        main,
        [
            "credit", "dispute", "--bank", "bank-b", "--subject", "RESOLVER-1",
            "--furnisher", "bank-a", "--account-ref", "R-1", "--no-wait",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bank-b disputed bank-a/R-1 (XB): sent 0x" in result.output

    # An explicit option wins over the resolver: a wrong registry is refused.
    result = CliRunner().invoke(
        main,
        ["credit", "--registry", "0x12", "get", "--bank", "bank-b", "--subject", "RESOLVER-1"],
    )
    assert result.exit_code == 1
    assert "registry: '0x12' is not an account address" in result.output


def test_a_resolver_factory_gets_the_state_dir_and_only_when_needed(
    chain: Chain, registry: str, files: dict[str, Path], tmp_path: Path
) -> None:
    """The main CLI puts a factory (state dir -> resolver) in ctx.meta; explicit options
    alone never open a state dir."""
    asked: list[Path | None] = []

    def factory(state_dir: Path | None) -> BankResolver:
        asked.append(state_dir)
        raise StateError("no consortium here", obj=str(state_dir), hint="run `poactl up`")

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.meta[RESOLVER_FACTORY_KEY] = factory

    main.add_command(credit)
    options = [
        "--rpc-url", chain.rpc_url, "--registry", registry,
        "--key-file", str(files["bank_b"]), "--secret-file", str(files["secret"]),
    ]  # fmt: skip
    get = ["get", "--bank", "bank-b", "--subject", NATIONAL_ID]
    result = CliRunner().invoke(main, ["credit", *options, *get])
    assert result.exit_code == 0, result.output
    assert asked == []

    state = tmp_path / "state"
    result = CliRunner().invoke(main, ["credit", *get, "--state-dir", str(state)])
    assert result.exit_code == 1
    assert f"error: {state}: no consortium here" in result.output
    result = CliRunner().invoke(main, ["credit", "--state-dir", str(state), *get])
    assert result.exit_code == 1
    assert asked == [state, state]


def test_get_reads_from_the_index_the_options_name(
    chain: Chain, registry: str, files: dict[str, Path], bank_a: CreditClient, tmp_path: Path
) -> None:
    subject = "0x" + bank_a.subject("CLI-INDEX-1").hex()
    bank_a.report(subject, record("CLI-IX")).wait()
    with running_index([chain.rpc_url], registry, tmp_path) as index:
        options = ["--index-url", index_url(index), "get", "--bank", "bank-b", "--subject", subject]
        result = run(chain, registry, files, "bank_b", *options)
        assert result.exit_code == 0, result.output
        assert "(read from the bank's read index, " in result.output
        assert "CLI-IX" in result.output
        result = run(chain, registry, files, "bank_b", *options, "--format", "json")
        got = json.loads(result.output)
        assert got["read"]["source"] == "index" and got["read"]["behind"] <= 2
    result = run(chain, registry, files, "bank_b", "get", "--bank", "bank-b", "--subject", subject)
    assert "(read from the node)" in result.output  # no index named: the node
