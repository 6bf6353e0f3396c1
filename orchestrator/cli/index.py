"""`poactl index`: a bank's read index of the credit registry. Without options it runs
the index in the foreground (as `up` and systemd run it); `--rebuild` has a running
index forget what it holds and fill again from the chain."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import handles_errors, state_dir_option
from orchestrator.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/poactl/index.yaml")


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The index's settings [default: {DEFAULT_CONFIG}] (`up` writes one per bank "
    "under indexes/<bank>/).",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Have the running index forget what it holds and fill again from the chain; "
    "waits until it has caught up with its node.",
)
@click.option("--bank", default=None, help="With --rebuild: a bank of the local consortium.")
@state_dir_option
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="With --rebuild: seconds to wait for it to catch up.")  # fmt: skip
@handles_errors
def index(
    config: Path | None, rebuild: bool, bank: str | None, state_dir: Path, timeout: float
) -> None:
    """Run a bank's read index in the foreground (`poactl up` starts one per bank; on a
    VM, systemd), or rebuild a running one from the chain (--rebuild)."""
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    if not rebuild:
        if bank is not None:
            raise ConfigError("--bank goes with --rebuild", obj="--bank",
                              hint="to run an index, pass its --config")  # fmt: skip
        from orchestrator.wiring import run_index

        sys.exit(run_index(config or DEFAULT_CONFIG))
    from orchestrator.index.admin import rebuild as rebuild_index

    url = _url(config, bank, state_dir)

    def progress(status: dict[str, Any]) -> None:
        block = (status.get("block") or {}).get("number")
        click.echo(
            f"  … block {block if block is not None else '-'} of {status.get('head')}, "
            f"{status.get('logs')} logs"
            + (f"; {status['problem']}" if status.get("problem") else ""),
            err=True,
        )

    done = rebuild_index(url, timeout=timeout, on_progress=progress)
    click.echo(
        f"rebuilt the read index at {url}: {done.logs} logs to block {done.block} "
        f"in {done.seconds:.1f}s"
    )


def _url(config: Path | None, bank: str | None, state_dir: Path) -> str:
    if (config is None) == (bank is None):
        raise ConfigError(
            "--rebuild needs the index: --config FILE (its settings) or --bank NAME",
            obj="--rebuild",
            hint="e.g. `poactl index --rebuild --bank bank-a` on the local consortium",
        )
    if config is not None:
        from orchestrator.index.settings import load_index_config

        settings = load_index_config(config)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        return f"http://{host}:{settings.port}/"
    from orchestrator.local.consortium import LocalConsortium
    from orchestrator.local.indexes import service, url_of

    local = LocalConsortium(state_dir)
    consortium = local.load()
    if bank not in consortium.members():
        raise ConfigError(
            f"unknown bank {bank!r}; the consortium's banks are {', '.join(consortium.members())}",
            obj="--bank",
            hint="pass one of the banks above",
        )
    return service(local.layout, bank).url() or url_of(consortium, bank)
