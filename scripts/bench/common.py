"""What the benchmarks share: where the repository, `poactl` and geth are, free ports for a
consortium file, the machine and geth version a figure was measured on, small statistics,
and `record`, which rewrites a benchmark's section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import Ports, parse_config
from orchestrator.geth.proc import runs_with_arg
from orchestrator.local.consortium import LocalConsortium
from orchestrator.local.ports import port_is_free
from orchestrator.statefile import read_json

ROOT = Path(__file__).resolve().parents[2]  # scripts/bench/common.py -> the repository
POACTL = str(ROOT / ".venv" / "bin" / "poactl")
GETH = ROOT / ".tools" / "bin" / "geth"
DOC = ROOT / "docs" / "benchmarks.md"


def free_base(span: int, start: int) -> int:
    """The first port >= start followed by `span` ports free on 127.0.0.1."""
    base = start
    while True:
        taken = [p for p in range(base, base + span) if not port_is_free(p)]
        if not taken:
            return base
        base = taken[-1] + 1


def move_ports(config: dict[str, Any], start: int) -> None:
    """Give every kind of base port the consortium file knows (p2p, http, authrpc,
    health, ... whether or not `config` lists it) its own range of one free port per
    node, the ranges not overlapping."""
    span = len(parse_config(yaml.safe_dump(config), source="bench").nodes)
    ports = config.setdefault("ports", {})
    base = start
    for kind in Ports.model_fields:
        ports[kind] = base = free_base(span, base)
        base += span + 10


def poactl_up(config_file: Path, state: Path, *, label: str, timeout: float) -> float:
    """`poactl up` of `config_file` into `state` (the real CLI); its seconds. A failure
    ends the benchmark with `up`'s output."""
    t0 = time.monotonic()
    done = subprocess.run(
        [POACTL, "up", "--config", str(config_file), "--state-dir", str(state),
         "--timeout", str(timeout)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"[{label}] poactl up failed ({done.returncode}):\n{done.stdout}\n"
                         f"{done.stderr}")  # fmt: skip
    return time.monotonic() - t0


def geth_pids(local: LocalConsortium, names: Sequence[str]) -> dict[str, int]:
    """Each node's running geth pid (checked against its datadir); the benchmark ends if
    one does not run."""
    pids = {}
    for name in names:
        paths = local.layout.node(name)
        pid = (read_json(paths.status) or {}).get("geth_pid")
        if not (isinstance(pid, int) and runs_with_arg(pid, str(paths.datadir))):
            raise SystemExit(f"no running geth for {name} (pid {pid})")
        pids[name] = pid
    return pids


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"
    )


def geth_version() -> str:
    out = subprocess.run([str(GETH), "version"], check=False, capture_output=True, text=True).stdout
    found = re.search(r"^Version: (\S+)", out, re.M)
    return found.group(1) if found else "unknown"


def summary(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.1f} s, min {min(xs):.1f} s, max {max(xs):.1f} s"


def pct(xs: Sequence[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def record(begin: str, end: str, section: str) -> None:
    """Replace the text between `begin` and `end` in docs/benchmarks.md (or append)."""
    DOC.parent.mkdir(exist_ok=True)
    text = (
        DOC.read_text()
        if DOC.exists()
        else "# Benchmarks\n\nFigures from `scripts/bench/` (`.venv/bin/python -m "
        "scripts.bench.<benchmark>`); rerun them to refresh.\n"
    )
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"recorded in {DOC}")


def publish(begin: str, end: str, section: str, *, record_it: bool) -> None:
    """Print a benchmark's section, and with `--record` rewrite it in docs/benchmarks.md."""
    print(section)
    if record_it:
        record(begin, end, section)
    else:
        print("(not recorded: pass --record to rewrite the section in docs/benchmarks.md)")


@contextmanager
def default_consortium(base_port: int) -> Iterator[LocalConsortium]:
    """`poactl up` of the shipped default consortium on free ports from `base_port`, in a
    temporary directory; stopped and deleted when the block ends."""
    work = Path(tempfile.mkdtemp(prefix="poa-bench-", dir="/tmp"))
    config: dict[str, Any] = yaml.safe_load((ROOT / "orchestrator" / "consortium.yaml").read_text())
    move_ports(config, base_port)
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    local = LocalConsortium(work / "state")
    try:
        subprocess.run(
            [POACTL, "up", "--config", str(work / "c.yaml"), "--state-dir", str(local.layout.root),
             "--no-deploy"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield local
    finally:
        down = [POACTL, "down", "--state-dir", str(local.layout.root)]
        subprocess.run(down, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def bench_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: `python -m <module>`, its docstring's first line, and
    `--record`; the benchmark adds its own options."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    parser.add_argument(
        "--record", action="store_true", help="rewrite this benchmark's section of the doc"
    )
    return parser
