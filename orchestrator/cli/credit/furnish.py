"""`credit furnish`: a bank's monthly file onto the chain, with a progress bar and a
summary (the work is `orchestrator.credit.furnish`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import handles_errors
from orchestrator.cli.credit.options import access_for, bank_option, state_dir_option
from orchestrator.credit.furnish import BATCH_RECORDS, FurnishResult, furnish_file
from orchestrator.errors import ConfigError
from orchestrator.network.names import account_ref_key_name

PROBLEMS_SHOWN = 20  # refused lines listed by `furnish` in text; --format json has all


@click.command()
@bank_option
@state_dir_option
@click.option(
    "--file",
    "furnishing_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Metro 2 (426-character base segments between a header and a trailer) or JSON Lines.",
)
@click.option(
    "--batch",
    "batch_records",
    type=click.IntRange(1, 500),
    default=BATCH_RECORDS,
    show_default=True,
    help="Records per transaction.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handles_errors
def furnish(
    *, bank: str, furnishing_file: Path, batch_records: int, timeout: float, fmt: str
) -> None:
    """Furnish the bank's file of accounts: validate, pseudonymize, write what is missing.

    Lines that fail validation are listed (line, field, rule) and the others still go;
    the exit status is then 1. Run it again after any failure: it writes only what the
    chain does not hold yet and never writes a version twice.
    """
    client, access = access_for(bank)
    if access.account_ref_key is None:
        raise ConfigError(
            f"no account-reference key for {bank}",
            obj=account_ref_key_name(bank),
            hint="the bank's leader agent creates it in the bank's vault with its other keys "
            "(restart the agents, or `poactl up`); outside the consortium's machine pass "
            "--account-ref-key-file",
        )
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []  # click's ProgressBar, once the plan is known

        def planned(result: FurnishResult, to_send: int) -> None:
            if fmt != "text":
                return
            click.echo(
                f"{furnishing_file.name} ({result.file_format}): {result.read} good records, "
                f"{len(result.problems)} refused, {result.unchanged} already on chain; "
                f"writing {to_send} in batches of {batch_records}",
                err=True,
            )
            bars.append(stack.enter_context(click.progressbar(length=to_send, file=sys.stderr)))

        def advanced(records: int) -> None:
            for bar in bars:
                bar.update(records)

        result = furnish_file(
            client,
            furnishing_file,
            account_ref_key=access.account_ref_key,
            batch_records=batch_records,
            timeout=timeout,
            progress=advanced,
            on_plan=planned,
        )
    if fmt == "json":
        doc = dataclasses.asdict(result) | {"records_per_second": result.records_per_second}
        doc["problems"] = [dataclasses.asdict(p) for p in result.problems]
        click.echo(json.dumps(doc, indent=2))
    else:
        per_record = result.gas_used // result.written if result.written else 0
        click.echo(
            f"{bank} furnished {result.written} records in {result.batches} transactions "
            f"({result.seconds:.1f} s, {result.records_per_second:.0f} records/s, "
            f"{per_record:,} gas per record); {result.unchanged} were already on chain"
        )
        for problem in result.problems[:PROBLEMS_SHOWN]:
            click.echo(f"refused: {problem}")
        if len(result.problems) > PROBLEMS_SHOWN:
            click.echo(f"... and {len(result.problems) - PROBLEMS_SHOWN} more (--format json)")
    if result.problems:
        raise SystemExit(1)
