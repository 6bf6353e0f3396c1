"""What every poactl command module shares: the one mapping from errors to exit codes,
the `--state-dir` option and the `credit` resolver's context key. (Its own module so
that the command group stays light and the command modules need not import it.)"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.errors import PoaError
from orchestrator.local.layout import default_state_dir

F = TypeVar("F", bound=Callable[..., Any])

# ctx.meta key of the factory that makes `credit`'s BankResolver for a state dir (the main
# group sets it; here so that the group need not import the credit commands)
RESOLVER_FACTORY_KEY = "poactl.credit.resolver_factory"

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_state_dir,
    envvar="POACTL_STATE_DIR",
    show_default="$XDG_STATE_HOME/poactl/default (~/.local/state/poactl/default)",
    help="Where the local consortium keeps its keys, chain data and logs.",
)


def handles_errors(fn: F) -> F:
    """The one mapping from poactl's errors to a message and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PoaError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(e.exit_code)

    return wrapper  # type: ignore[return-value]
