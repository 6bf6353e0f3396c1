"""Bad input to `poactl agent`: each gives a clear error, no tight retry loop and no
key in geth's keystore.

Every case runs the real command line (`python -m orchestrator.cli agent --config X`) in a
subprocess, so the exit code, the wall time and the operator's output are the real ones.
A clear error is the last `error:` block of the output: it names the problem (the vault
URL, the secret, the blob, the genesis, the file and key) and carries a `hint:`. A retry
loop shows as WARNING lines in the agent's log; they are counted over the run.

Cases 3 and 4 share one running consortium (bank-a: one validator and one spare); the
missing-secret case stops it, so it runs after the malformed-enode case (file order),
and the enode case brings the consortium back up if it finds it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from orchestrator.agent.settings import AgentFile, AgentPorts
from orchestrator.config import Consortium, VaultSettings, load_config
from orchestrator.geth.ipc import ipc_probe
from orchestrator.geth.proc import runs_with_arg, stop_pid
from orchestrator.local.consortium import LocalConsortium
from orchestrator.network.create import read_network
from orchestrator.network.leases import holder_of
from orchestrator.network.names import identity_lease, leader_lease, validator_key_name
from orchestrator.statefile import read_json
from orchestrator.store.local import LocalStore
from tests.helpers.ports import consortium_yaml, free_port_bases
from tests.services.keyvault_emulator import KeyVaultService

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "bank-a"
BOOT_TIMEOUT = 6.0
GIVE_UP_SLACK = 6.0  # a retry's backoff step and a busy 2-core machine's scheduling
LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PYTHON_START = 10.0  # the interpreter and poactl's imports on a loaded 2-core machine (a run that
# waited instead of stopping takes the boot timeout, 60 s, or the default 300 s)
RETRY_WARNING = re.compile(r" WARNING .*(\(retrying with backoff\)|\(will retry\)|gave up after)")


# -- running the agent -------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRun:
    code: int
    seconds: float
    output: str  # stdout and stderr: the agent's log and the CLI's error message

    @property
    def error(self) -> str:
        """The CLI's closing `error:` block (what the operator reads)."""
        at = self.output.rfind("error: ")
        assert at >= 0, f"no error message in the output:\n{self.tail}"
        return self.output[at:]

    @property
    def retry_warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if RETRY_WARNING.search(line)]

    @property
    def logged_seconds(self) -> float:
        """From the agent's first log line to its last: its own time, without the
        interpreter's start (which a loaded machine stretches)."""
        stamps = [
            dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            for m in map(LOG_STAMP.match, self.output.splitlines()) if m
        ]  # fmt: skip
        assert len(stamps) >= 2, f"no agent log lines:\n{self.tail}"
        return (stamps[-1] - stamps[0]).total_seconds()

    @property
    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-30:])


def poactl(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]


def run_agent(
    config: Path, *, timeout: float, watch: Callable[[], None] = lambda: None
) -> AgentRun:
    """`poactl agent --config config` until it exits; `watch` is called ten times a second
    while it runs. An agent still running after `timeout` is stopped and fails the test."""
    log = config.with_suffix(".out")
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            poactl("agent", "--config", str(config)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        while proc.poll() is None and time.monotonic() - started < timeout:
            watch()
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            stop_pid(proc.pid)  # INT, TERM, KILL: the agent stops its geth itself
            proc.wait()
            pytest.fail(
                f"the agent still ran after {timeout}s:\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            )
    return AgentRun(proc.returncode, time.monotonic() - started, log.read_text(errors="replace"))


def write_agent_file(path: Path, settings: AgentFile, **changes: object) -> Path:
    doc = settings.model_dump(mode="json")
    doc.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def standalone_agent(
    root: Path, geth: str, vault: VaultSettings, **changes: object
) -> tuple[LocalConsortium, Path]:
    """The agent file of the only node of a new one-validator consortium in `root`, with
    a fresh local store and the given vault."""
    local = LocalConsortium(root, geth=geth, vault=lambda _member: vault)
    consortium = write_consortium(local, consortium_yaml({MEMBER: 1}))
    node = consortium.nodes[0]
    settings = local.agent_settings(consortium, node, geth)
    return local, write_agent_file(local.layout.node(node.name).agent_config, settings, **changes)


def write_consortium(local: LocalConsortium, text: str) -> Consortium:
    local.layout.root.mkdir(parents=True, exist_ok=True)
    source = local.layout.root / "source.yaml"
    source.write_text(text)
    consortium = load_config(source)
    local.layout.config.write_text(consortium.canonical())
    return consortium


# -- what every case checks --------------------------------------------------------------


def assert_clear_error(run: AgentRun, *names: str) -> None:
    assert run.code == 1, f"exit code {run.code}:\n{run.tail}"
    assert "Traceback" not in run.output, run.tail
    for name in names:
        assert name in run.error, f"the error does not name {name!r}:\n{run.error}"
    assert "hint: " in run.error, run.error


def assert_no_identity_keystore(node_root: Path) -> None:
    keystore = node_root / "datadir" / "keystore"
    leftovers = sorted(p.name for p in keystore.iterdir()) if keystore.is_dir() else []
    assert leftovers == [], f"key material in {keystore}: {leftovers}"


def geth_processes(datadir: Path) -> list[list[str]]:
    """Command lines of running processes that use `datadir`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(datadir) in cmdline:
            found.append(cmdline)
    return found


def stop_geth_of(datadir: Path) -> None:
    """Stop a geth an agent of this test left behind (its datadir is ours)."""
    for proc in psutil.process_iter(["cmdline"]):
        if str(datadir) in (proc.info["cmdline"] or []):
            stop_pid(proc.pid)


def not_leased(store: LocalStore, name: str) -> bool:
    return not holder_of(store, name).leased


# -- 1. wrong vault URL ------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrong_vault_url(geth: str) -> Iterator[tuple[AgentRun, str, LocalConsortium]]:
    """One run of an agent whose vault URL is an https port where nothing listens."""
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    (port,) = free_port_bases(1, 1)
    url = f"https://127.0.0.1:{port}"
    try:
        local, config = standalone_agent(
            root / "s",
            geth,
            VaultSettings(kind="azure", url=url),
            boot_timeout_seconds=BOOT_TIMEOUT,
        )
        yield run_agent(config, timeout=BOOT_TIMEOUT + 30), url, local
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_wrong_vault_url_gives_up_at_the_boot_timeout_naming_the_url(
    wrong_vault_url: tuple[AgentRun, str, LocalConsortium],
) -> None:
    run, url, local = wrong_vault_url
    assert_clear_error(run, url)
    assert re.search(r"did not answer|could not be reached|unreachable", run.error), run.error
    assert run.seconds >= BOOT_TIMEOUT, run.seconds
    assert run.logged_seconds <= BOOT_TIMEOUT + GIVE_UP_SLACK, run.tail  # no hang past it
    # It retried with backoff (the vault might have come back), warning once, not per try.
    assert len(run.retry_warnings) == 1, run.tail
    node = local.layout.node(f"{MEMBER}-1")
    assert json.loads(node.agent_status.read_text())["state"] == "FATAL"
    assert_no_identity_keystore(node.root)
    assert not_leased(LocalStore(local.layout.store(MEMBER)), leader_lease(MEMBER))


@pytest.mark.slow
def test_wrong_vault_url_logs_at_most_one_retry_warning_a_second(
    wrong_vault_url: tuple[AgentRun, str, LocalConsortium],
) -> None:
    run, _url, _local = wrong_vault_url
    assert len(run.retry_warnings) <= run.seconds, "\n".join(run.retry_warnings)


# -- 2. bad vault credentials ------------------------------------------------------------


def test_untrusted_vault_credentials_stop_the_agent_at_once(
    geth: str,
    short_dir: Path,
    keyvault_emulator: KeyVaultService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyvault_emulator.use_identity(monkeypatch, untrusted=True)  # the agent inherits it
    local, config = standalone_agent(
        short_dir / "s",
        geth,
        VaultSettings(
            kind="azure",
            url=keyvault_emulator.vault_url,
            ca_file=Path(str(keyvault_emulator.connection_verify)),
            verify_challenge_resource=False,
        ),
        boot_timeout_seconds=60,
    )
    run = run_agent(config, timeout=60)
    assert_clear_error(run, keyvault_emulator.vault_url)
    assert re.search(r"refused|denied|not authori[sz]ed", run.error, re.I), run.error
    assert "role" in run.error, run.error  # the hint says which role the identity needs
    assert run.seconds < PYTHON_START + 5, f"took {run.seconds:.1f}s: it waited, not stopped"
    assert run.retry_warnings == []
    node = local.layout.node(f"{MEMBER}-1")
    assert json.loads(node.agent_status.read_text())["state"] == "FATAL"
    assert_no_identity_keystore(node.root)
    assert not_leased(LocalStore(local.layout.store(MEMBER)), leader_lease(MEMBER))


# -- 3 and 4: a running consortium -------------------------------------------------------


@dataclass
class Running:
    local: LocalConsortium
    config: Path
    root: Path

    def ensure_up(self) -> None:
        """Bring the consortium (back) up unless every agent runs."""

        def runs(node: str) -> bool:
            paths = self.local.layout.node(node)
            pid = (read_json(paths.agent_status) or {}).get("pid")
            return isinstance(pid, int) and runs_with_arg(pid, str(paths.agent_config))

        if not all(runs(n.name) for n in self.local.load().nodes):
            self.local.up(self.config, timeout=120)


@pytest.fixture(scope="module")
def running(geth: str) -> Iterator[Running]:
    """bank-a: one validator and one spare, on the local store and vault."""
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    config.write_text(consortium_yaml({MEMBER: 1}, spares=1))
    local = LocalConsortium(root / "s", geth=geth)
    try:
        local.up(config, timeout=120)
        yield Running(local, config, root)
    finally:
        if local.exists:
            local.down()
        shutil.rmtree(root, ignore_errors=True)


BAD_ENODES = {
    f"enodes/{MEMBER}/bogus.json": b"not json",
    f"enodes/{MEMBER}/bad-url.json": json.dumps(
        {"node": "bad-url", "member": MEMBER, "enode": "enode://nothex@127.0.0.1:30303"}
    ).encode(),
}
PEERS_EVERY = 5.0  # the agent's peer refresh interval (orchestrator.agent.PEERS_EVERY)


@pytest.mark.geth
@pytest.mark.slow
def test_malformed_enode_blobs_are_reported_once_and_ignored(running: Running) -> None:
    running.ensure_up()
    local = running.local
    nodes = [n.name for n in local.load().nodes]
    logs = {n: local.layout.node(n).agent_log for n in nodes}
    offsets = {n: logs[n].stat().st_size for n in nodes}
    pids = {n: json.loads(local.layout.node(n).agent_status.read_text())["pid"] for n in nodes}
    store = LocalStore(local.layout.store(MEMBER))
    head_before = _head(local, nodes[0])

    for name, data in BAD_ENODES.items():
        store.write(name, data)

    def new_lines(node: str) -> list[str]:
        with logs[node].open("rb") as f:
            f.seek(offsets[node])
            return f.read().decode(errors="replace").splitlines()

    def reports(node: str, blob: str) -> list[str]:
        return [line for line in new_lines(node) if " ERROR " in line and blob in line]

    deadline = time.monotonic() + 3 * PEERS_EVERY
    while not all(reports(n, b) for n in nodes for b in BAD_ENODES):
        assert time.monotonic() < deadline, {n: new_lines(n)[-5:] for n in nodes}
        time.sleep(0.5)
    time.sleep(2 * PEERS_EVERY + 1)  # two more peer refreshes: still one report each

    for node in nodes:
        for blob in BAD_ENODES:
            found = reports(node, blob)
            assert len(found) == 1, f"{node} reported {blob} {len(found)} times: {found}"
            assert "hint: " in found[0], found[0]
        assert [line for line in new_lines(node) if RETRY_WARNING.search(line)] == []
        assert psutil.pid_exists(pids[node])
        state = json.loads(local.layout.node(node).agent_status.read_text())["state"]
        assert state in ("SEALING", "FOLLOWING"), f"{node} is {state}"
    assert "not an enode record" in reports(nodes[0], f"enodes/{MEMBER}/bogus.json")[0]
    assert "malformed enode URL" in reports(nodes[0], f"enodes/{MEMBER}/bad-url.json")[0]
    assert _head(local, nodes[0]) > head_before, "the chain stopped"
    status = subprocess.run(
        poactl("status", "--state-dir", str(local.layout.root)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr


def _head(local: LocalConsortium, node: str) -> int:
    answer = ipc_probe(local.layout.node(node).ipc, "eth_blockNumber", [])
    return int(answer, 16) if isinstance(answer, str) else -1


@pytest.mark.geth
@pytest.mark.slow
def test_a_missing_validator_key_stops_the_agent_and_frees_the_identity(
    running: Running, geth: str
) -> None:
    local = running.local
    local.down()  # a clean stop releases every lease: identity 0 is free
    store = LocalStore(local.layout.store(MEMBER))
    # The member's leader lease is held (as by a healthy leader elsewhere), so the new
    # agent cannot lead: it must not create identities in its empty vault.
    leader = store.acquire_lease(leader_lease(MEMBER), 60)
    assert leader is not None, holder_of(store, leader_lease(MEMBER))
    try:
        consortium = local.load()
        template = local.agent_settings(consortium, consortium.nodes[0], geth)
        p2p, http, authrpc, health = free_port_bases(4, 1)
        node = local.layout.node(f"{MEMBER}-9")
        empty_vault = running.root / "empty-vault"
        empty_vault.mkdir()
        config = write_agent_file(
            node.agent_config,
            template,
            node=f"{MEMBER}-9",
            state_dir=str(node.root),
            ports=AgentPorts(p2p=p2p, http=http, authrpc=authrpc, health=health).model_dump(),
            vault={"kind": "local", "path": str(empty_vault)},
            boot_timeout_seconds=60,
        )
        try:
            run = run_agent(config, timeout=90)
            left_running = geth_processes(node.datadir)
        finally:
            stop_geth_of(node.datadir)
        secret = validator_key_name(MEMBER, 0)
        assert_clear_error(run, secret)
        assert "missing" in run.error, run.error
        assert run.seconds < 30, f"took {run.seconds:.1f}s"  # no waiting for the boot timeout
        assert json.loads(node.agent_status.read_text())["state"] == "FATAL"
        assert_no_identity_keystore(node.root)
        assert left_running == [], "the agent left its geth running"
        assert list(empty_vault.iterdir()) == [], "a non-leader created secrets"
        # The identity is free again at once: a healthy agent takes it without waiting
        # for the lease to expire.
        lease = holder_of(store, identity_lease(MEMBER, 0))
        assert lease.holder == f"{MEMBER}-9" and not lease.leased, lease  # taken, given back
        taken = store.acquire_lease(identity_lease(MEMBER, 0), 15)
        assert taken is not None
        store.release_lease(taken)
        assert run.retry_warnings == []
    finally:
        store.release_lease(leader)


# -- 5. a chain from another genesis -----------------------------------------------------


@pytest.fixture(scope="module")
def other_network(geth: str) -> Iterator[tuple[LocalConsortium, Path]]:
    """Consortium X (bank-a: one validator), brought up and stopped: its node's datadir
    holds X's chain."""
    root = Path(tempfile.mkdtemp(prefix="poa-", dir="/tmp"))
    config = root / "consortium.yaml"
    config.write_text(consortium_yaml({MEMBER: 1}))
    x = LocalConsortium(root / "x", geth=geth)
    try:
        x.up(config, timeout=120)
        x.down()
        yield x, root
    finally:
        if x.exists:
            x.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.geth
@pytest.mark.slow
@pytest.mark.parametrize("marker", [True, False], ids=["with-genesis-marker", "datadir-only"])
def test_a_chain_from_another_genesis_is_refused(
    other_network: tuple[LocalConsortium, Path], geth: str, marker: bool
) -> None:
    """Consortium Y's agent finds the node's datadir holding X's chain. With X's genesis
    marker it refuses before running geth at all; with the datadir alone, `geth init`
    refuses the other genesis and the agent never starts geth as a node."""
    x, root = other_network
    x_node = x.layout.node(f"{MEMBER}-1")
    y = LocalConsortium(root / f"y-{marker}", geth=geth)
    consortium = write_consortium(y, x.layout.config.read_text())  # same names and ports
    node = y.layout.node(f"{MEMBER}-1")
    node.root.mkdir(parents=True)
    shutil.copytree(x_node.datadir, node.datadir, ignore=shutil.ignore_patterns("*.ipc"))
    if marker:
        shutil.copy(x_node.root / "genesis.sha256", node.root / "genesis.sha256")
    settings = y.agent_settings(consortium, consortium.nodes[0], geth)
    config = write_agent_file(node.agent_config, settings, boot_timeout_seconds=60)

    seen: list[list[str]] = []

    def watch() -> None:
        seen.extend(c for c in geth_processes(node.datadir) if c not in seen)

    try:
        run = run_agent(config, timeout=60, watch=watch)
        left_running = geth_processes(node.datadir)
    finally:
        stop_geth_of(node.datadir)
    assert left_running == [], "the agent left a geth running"
    x_network, y_network = read_network(x.store()), read_network(y.store())
    assert x_network is not None and y_network is not None
    assert x_network.genesis_sha256 != y_network.genesis_sha256
    if marker:
        assert_clear_error(
            run, x_network.genesis_sha256[:12], y_network.genesis_sha256[:12], str(node.datadir)
        )
        assert "chain was created from genesis" in run.error, run.error
        assert seen == [], f"geth ran for the datadir: {seen}"
    else:
        assert_clear_error(run, "geth init", f"{MEMBER}-1")
        assert "genesis" in run.error, run.error
        assert all("init" in c for c in seen), f"geth ran as a node: {seen}"
    assert run.seconds < PYTHON_START + 15, run.seconds
    assert json.loads(node.agent_status.read_text())["state"] == "FATAL"
    assert not node.geth_log.exists(), "geth was started"
    assert_no_identity_keystore(node.root)
    # The node still records X's genesis (or none): nothing claims the chain is Y's.
    recorded = node.root / "genesis.sha256"
    assert (recorded.read_text().strip() if recorded.exists() else None) == (
        x_network.genesis_sha256 if marker else None
    )


# -- 6. a broken agent file --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ("ports: {p2p: [1\n", ("not valid YAML", "line ")),
        ("colour: blue\n", ("colour", "unknown key")),
        ("lease_seconds: 5\n", ("lease_seconds", "15")),
    ],
    ids=["bad-yaml", "unknown-key", "lease-too-short"],
)
def test_a_broken_agent_file_stops_at_once_naming_file_and_key(
    geth: str, short_dir: Path, change: str, names: tuple[str, ...]
) -> None:
    local, config = standalone_agent(
        short_dir / "s", geth, VaultSettings(kind="local", path=short_dir / "vault")
    )
    text = "\n".join(
        line for line in config.read_text().splitlines() if not line.startswith("lease_seconds")
    )
    config.write_text(text + "\n" + change)
    run = run_agent(config, timeout=30)
    assert_clear_error(run, str(config), *names)
    assert run.seconds < PYTHON_START + 2, run.seconds
    node = local.layout.node(f"{MEMBER}-1")
    assert not node.agent_status.exists()  # it stopped before it was an agent
    assert not node.datadir.exists()
