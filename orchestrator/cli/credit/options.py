"""Where the `credit` commands' bank access comes from, and the options they share.

Which endpoint, registry and keys a bank uses comes from a `BankResolver`. A parent
command can put one in `ctx.meta[RESOLVER_KEY]`, or a factory in
`ctx.meta[RESOLVER_FACTORY_KEY]` that makes one for a state dir (the main CLI's: the
local consortium in `--state-dir`, given to `credit` or to its command); explicit options
(`--rpc-url`, `--registry`, `--key-file`, `--secret-file`) override it field by field,
and alone they are enough (the resolver is then not consulted at all).

`--subject` takes a national ID, which is turned into the pseudonym here and never sent,
or a pseudonym itself (0x + 64 hex digits).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from orchestrator.boundaries import Secret
from orchestrator.cli.common import RESOLVER_FACTORY_KEY, F
from orchestrator.credit.access import BankAccess, BankResolver
from orchestrator.credit.client import CreditClient
from orchestrator.credit.pseudonym import check_subject
from orchestrator.errors import ConfigError
from orchestrator.geth.tx import check_address

RESOLVER_KEY = "poactl.credit.resolver"  # a BankResolver
STATE_DIR_KEY = "poactl.credit.state_dir"  # the --state-dir given, if any
OPTIONS_KEY = "poactl.credit.options"  # the OptionsResolver the commands use


ResolverFactory = Callable[[Path | None], BankResolver]  # state dir (None: default) -> it


def read_secret_file(path: Path, option: str) -> Secret:
    """A secret from a file readable by its owner alone (like ssh's private keys)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read {option}: {e.strerror}", obj=str(path), hint=f"check {option}"
        ) from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{option} is readable by other users",
            obj=str(path),
            hint=f"chmod 600 {path}",
        )
    if not text:
        raise ConfigError(f"{option} is empty", obj=str(path), hint=f"check {option}")
    return Secret(text)


@dataclass(frozen=True)
class OptionsResolver:
    """Explicit options first, then the fallback resolver (if any) for what is missing.

    `fallback` is called (and its resolver asked) only when an option is missing.
    """

    rpc_url: str | None = None
    token_file: Path | None = None
    index_url: str | None = None
    registry: str | None = None
    key_file: Path | None = None
    secret_file: Path | None = None
    account_ref_key_file: Path | None = None
    fallback: Callable[[], BankResolver | None] | None = None

    def resolve(self, bank: str) -> BankAccess:
        given = (self.rpc_url, self.registry, self.key_file, self.secret_file)
        resolver = None
        if self.fallback is not None and any(v is None for v in given):
            resolver = self.fallback()
        base = resolver.resolve(bank) if resolver is not None else None

        def need(value: Any, option: str, from_base: Any) -> Any:
            if value is not None:
                return value
            if base is not None:
                return from_base
            raise ConfigError(
                f"no {option} for {bank}",
                obj=option,
                hint=f"pass {option} (or its environment variable, see --help)",
            )

        return BankAccess(
            rpc_url=need(self.rpc_url, "--rpc-url", base and base.rpc_url),
            registry=need(self.registry, "--registry", base and base.registry),
            account_key=(
                read_secret_file(self.key_file, "--key-file")
                if self.key_file is not None
                else need(None, "--key-file", base and base.account_key)
            ),
            pseudonym_secret=(
                read_secret_file(self.secret_file, "--secret-file")
                if self.secret_file is not None
                else need(None, "--secret-file", base and base.pseudonym_secret)
            ),
            names=base.names if base is not None else {},
            registry_block=base.registry_block if base is not None else 0,
            account_ref_key=(
                read_secret_file(self.account_ref_key_file, "--account-ref-key-file")
                if self.account_ref_key_file is not None
                else (base.account_ref_key if base is not None else None)
            ),
            rpc_token=(
                read_secret_file(self.token_file, "--token-file")
                if self.token_file is not None
                else (base.rpc_token if base is not None and self.rpc_url is None else None)
            ),
            index_url=self.index_url
            or (base.index_url if base is not None and self.rpc_url is None else None),
        )


def access_for(bank: str) -> tuple[CreditClient, BankAccess]:
    """The client and access of `bank`, as the `credit` group's resolver answers them."""
    resolver: BankResolver = click.get_current_context().meta[OPTIONS_KEY]
    access = resolver.resolve(bank)
    client = CreditClient.of(access)
    return client, access


def subject_of(client: CreditClient, text: str) -> bytes:
    """A `--subject`: a 0x pseudonym as given, or a national ID hashed here."""
    if text.startswith("0x") and len(text) == 66:
        return check_subject(text)
    return client.subject(text)


def furnisher_of(text: str, access: BankAccess) -> str:
    """An address, or a bank name the resolver knows (its admin account, the furnisher:
    `names` lists a bank's admin after its writer account, so the admin wins)."""
    by_name = {name: address for address, name in access.names.items()}
    return str(check_address("--furnisher", by_name.get(text, text)))


# -- options the commands share -------------------------------------------------------

bank_option = click.option("--bank", required=True, help="The bank acting (its name).")
subject_option = click.option(
    "--subject",
    required=True,
    help="National ID (hashed here into the pseudonym, never sent) or a 0x pseudonym.",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def remember_state_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[STATE_DIR_KEY] = value


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="POACTL_STATE_DIR",
    expose_value=False,
    callback=remember_state_dir,
    help="The local consortium whose banks --bank names [default: $POACTL_STATE_DIR, "
    "else poactl's default state dir].",
)


def fallback(ctx: click.Context) -> BankResolver | None:
    """The parent's resolver, or one made by its factory for the --state-dir given."""
    ready: BankResolver | None = ctx.meta.get(RESOLVER_KEY)
    if ready is not None:
        return ready
    factory: ResolverFactory | None = ctx.meta.get(RESOLVER_FACTORY_KEY)
    return None if factory is None else factory(ctx.meta.get(STATE_DIR_KEY))


own_furnisher_option = click.option(
    "--furnisher",
    default=None,
    help="The tradeline's bank (name or address) [default: this bank]. The registry lets "
    "a bank write only its own: another bank is refused (NotFurnisher).",
)


def wait_options(fn: F) -> F:
    fn = click.option("--timeout", type=float, default=60.0, show_default=True)(fn)
    fn = click.option("--confirmations", type=click.IntRange(min=0), default=0, show_default=True)(
        fn
    )
    return click.option("--wait/--no-wait", default=True, help="Wait for inclusion.")(fn)
