"""`credit` commands: report, get, history, dispute, resolve, furnish. Parse, call the SDK,
render.

`options` says where a bank's endpoint, registry and keys come from (a resolver, overridden
option by option) and holds the shared options; `render` shows what the SDK returns;
`tradelines` has the commands on one tradeline, `furnish` the monthly file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from orchestrator.cli.common import RESOLVER_FACTORY_KEY
from orchestrator.cli.credit import furnish, tradelines
from orchestrator.cli.credit.options import (
    OPTIONS_KEY,
    RESOLVER_KEY,
    STATE_DIR_KEY,
    OptionsResolver,
    ResolverFactory,
    fallback,
    read_secret_file,
    state_dir_option,
)

__all__ = [
    "RESOLVER_FACTORY_KEY",
    "RESOLVER_KEY",
    "STATE_DIR_KEY",
    "OptionsResolver",
    "ResolverFactory",
    "credit",
    "read_secret_file",
]


@click.group("credit")
@click.option(
    "--rpc-url", envvar="POACTL_CREDIT_RPC_URL", help="The bank's JSON-RPC URL (its balancer)."
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_TOKEN_FILE",
    help="File with the application's token for the bank's balancer (mode 600).",
)
@click.option("--registry", envvar="POACTL_CREDIT_REGISTRY", help="CreditRegistry address.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_KEY_FILE",
    help="File with the bank's account private key (hex; mode 600).",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_SECRET_FILE",
    help="File with the consortium's pseudonym secret (mode 600).",
)
@click.option(
    "--account-ref-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="POACTL_CREDIT_ACCOUNT_REF_KEY_FILE",
    help="File with the bank's account-reference key (furnish; mode 600).",
)
@click.option(
    "--index-url",
    envvar="POACTL_CREDIT_INDEX_URL",
    help="The bank's read index (`poactl index`): reads go there first [default with "
    "--bank: the local bank's index].",
)
@state_dir_option
@click.pass_context
def credit(
    ctx: click.Context,
    *,
    rpc_url: str | None,
    token_file: Path | None,
    registry: str | None,
    key_file: Path | None,
    secret_file: Path | None,
    account_ref_key_file: Path | None,
    index_url: str | None,
) -> None:
    """Credit records: report, read, dispute and resolve tradelines."""
    ctx.meta[OPTIONS_KEY] = OptionsResolver(
        rpc_url=rpc_url,
        token_file=token_file,
        registry=registry,
        key_file=key_file,
        secret_file=secret_file,
        account_ref_key_file=account_ref_key_file,
        index_url=index_url,
        fallback=functools.partial(fallback, ctx),
    )


for command in (
    tradelines.report,
    tradelines.get,
    tradelines.history,
    tradelines.dispute,
    tradelines.resolve,
    furnish.furnish,
):
    credit.add_command(command)
