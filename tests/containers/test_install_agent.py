"""scripts/install_agent.sh in a staging root (`--prefix`): what it writes, that a second
run changes nothing, and that bad arguments are refused before anything is written.

What a staging root cannot show (there is no systemd and no root-owned / here): creating
the service user, `systemctl enable --now`, and the unit's sandbox at run time. The unit
file itself is checked with `systemd-analyze verify` where that is installed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.agent.settings import load_agent_config
from orchestrator.index.settings import load_index_config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install_agent.sh"
CONFIG = Path("etc/poactl/agent.yaml")
UNIT = Path("etc/systemd/system/poactl-agent.service")
VENV = Path("opt/poactl/venv")
SAMPLE = Path("orchestrator/consortium.yaml")  # a consortium file, for --consortium
BANK_B_DATA = "https://bankbdata.blob.core.windows.net/consortium?sv=2022-11-02&sp=rl&sig=ab%3D"
GOOD = {
    "--member": "bank-a",
    "--node": "bank-a-1",
    "--vault-url": "https://bank-a-kv.vault.azure.net",
    "--storage-account-url": "https://bankadata.blob.core.windows.net",
    "--container": "poactl",
    "--publish-container": "consortium",
    "--consortium-data": f"bank-b={BANK_B_DATA}",
}


def install(
    prefix: Path, /, source: Path = REPO, **overrides: str | None
) -> subprocess.CompletedProcess[str]:
    args = {"--prefix": str(prefix), "--source": str(source), **GOOD}
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            args.pop(flag, None)
        else:
            args[flag] = value
    argv = [str(SCRIPT)] + [part for pair in args.items() for part in pair]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under root: (sha256, mode, mtime_ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = (digest, st.st_mode & 0o7777, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the package's sources, so that edits in the work tree while the
    tests run do not count as a new release."""
    src = tmp_path_factory.mktemp("src")
    for part in ("pyproject.toml", "README.md", "orchestrator", "genesis"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / part, src / part)
    return src


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, source: Path) -> tuple[Path, Path, str]:
    """One real install into a staging root (a virtualenv and a pip install: ~20 s)."""
    prefix = tmp_path_factory.mktemp("root")
    result = install(prefix, source, consortium=str(source / SAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    return prefix, source, result.stdout


@pytest.mark.slow
def test_first_run_installs_poactl_config_and_unit(installed: tuple[Path, Path, str]) -> None:
    prefix, source, out = installed
    version = subprocess.run(
        [str(prefix / VENV / "bin" / "poactl"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "0.1.0" in version
    assert (prefix / CONFIG).stat().st_mode & 0o777 == 0o640
    assert (prefix / UNIT).stat().st_mode & 0o777 == 0o644
    assert yaml.safe_load((prefix / CONFIG).read_text()) == {
        "member": "bank-a",
        "node": "bank-a-1",
        "role": "validator",
        "state_dir": "/var/lib/poactl",
        "consortium_file": "/etc/poactl/consortium.yaml",
        "host": "127.0.0.1",
        "peer_network": "127.0.0.0/8",
        "rpc_host": "127.0.0.1",
        "ports": {"p2p": 30303, "http": 8545, "authrpc": 8651, "health": 8745},
        "runtime": {"kind": "docker", "image": "ethereum/client-go:v1.13.15"},
        "vault": {"kind": "azure", "url": "https://bank-a-kv.vault.azure.net"},
        "store": {
            "kind": "azure",
            "account_url": "https://bankadata.blob.core.windows.net",
            "container": "poactl",
            "publish": {
                "kind": "azure",
                "account_url": "https://bankadata.blob.core.windows.net",
                "container": "consortium",
            },
            "consortium_data": {"bank-b": BANK_B_DATA},
        },
    }
    # The agent's own loader accepts it (an unknown or missing key would be an error).
    agent = load_agent_config(prefix / CONFIG)
    assert (agent.runtime.kind, agent.runtime.image) == ("docker", "ethereum/client-go:v1.13.15")
    assert (prefix / "etc/poactl/consortium.yaml").read_bytes() == (source / SAMPLE).read_bytes()
    assert (prefix / "etc/poactl/consortium.yaml").stat().st_mode & 0o777 == 0o644
    unit = (prefix / UNIT).read_text().splitlines()
    for line in (
        "Type=simple",
        "ExecStart=/opt/poactl/venv/bin/poactl agent --config /etc/poactl/agent.yaml",
        "Restart=on-failure",
        "User=poactl",
        "SupplementaryGroups=docker",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/poactl",
        "WantedBy=multi-user.target",
    ):
        assert line in unit
    assert "would run: systemctl daemon-reload && systemctl enable --now poactl-agent" in out
    assert (prefix / "var/lib/poactl").is_dir()
    assert not (source / "build").exists()  # built from a copy, not in the source tree
    assert not list(source.glob("*.egg-info"))


@pytest.mark.slow
def test_second_run_changes_nothing(installed: tuple[Path, Path, str]) -> None:
    prefix, source, _ = installed
    before = snapshot(prefix)
    result = install(prefix, source, consortium=str(source / SAMPLE))
    assert result.returncode == 0, result.stderr
    assert snapshot(prefix) == before  # byte-identical, same modes, same mtimes
    assert "/etc/poactl/agent.yaml: unchanged" in result.stdout
    assert "/etc/systemd/system/poactl-agent.service: unchanged" in result.stdout
    assert "poactl unchanged" in result.stdout
    assert result.stdout.rstrip().endswith("nothing changed")


@pytest.mark.slow
def test_a_changed_argument_rewrites_only_what_it_touches(
    installed: tuple[Path, Path, str],
) -> None:
    prefix, source, _ = installed
    before = snapshot(prefix)
    image = "registry.bank-a.example/geth:v1.13.15"
    result = install(prefix, source, consortium=str(source / SAMPLE), image=image)
    assert result.returncode == 0, result.stderr
    after = snapshot(prefix)
    assert {k for k in after if after[k] != before.get(k)} == {str(CONFIG)}
    assert image in (prefix / CONFIG).read_text()
    # back to the default image for the other tests
    assert install(prefix, source, consortium=str(source / SAMPLE)).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
def test_unit_file_passes_systemd_analyze_verify(
    installed: tuple[Path, Path, str], tmp_path: Path
) -> None:
    prefix, _, _ = installed
    # verify wants ExecStart's binary to exist: point it at the staged virtualenv.
    text = (prefix / UNIT).read_text()
    staged = text.replace("ExecStart=/opt/", f"ExecStart={prefix}/opt/")
    assert staged != text
    unit = tmp_path / "poactl-agent.service"
    unit.write_text(staged)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_process_runtime_config_has_no_image(tmp_path: Path) -> None:
    # --image with the process runtime is refused before anything is installed.
    result = install(tmp_path, runtime="process", image="x/geth:1")
    assert result.returncode == 2
    assert "--image: only for --runtime docker" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"member": None}, "--member: missing"),
        ({"node": "Bank A"}, "--node: 'Bank A' is not a node name"),
        ({"member": "1bank"}, "--member: '1bank' is not a member name"),
        ({"role": "observer"}, "--role: 'observer' is not validator or rpc"),
        ({"http_port": "80"}, "--http-port: '80' is not a port in 1024..65535"),
        ({"consortium": "/nonexistent.yaml"}, "--consortium: '/nonexistent.yaml' is not a file"),
        ({"vault_url": "http://kv.example"}, "--vault-url: 'http://kv.example' is not an https://"),
        ({"storage_account_url": None}, "--storage-account-url: missing"),
        ({"container": "a--b"}, "--container: 'a--b' is not a blob container name"),
        ({"runtime": "podman"}, "--runtime: 'podman' is not docker or process"),
        ({"publish_container": "poactl"}, "--publish-container: must differ from --container"),
        ({"consortium_data": "bank-b"}, "--consortium-data: 'bank-b' is not MEMBER=URL"),
        ({"consortium_data": "bank-a=https://x.net/c"}, "'bank-a' is this bank"),
        ({"consortium_data": "bank-b=ftp://x.net/c"}, "is not an http(s):// container URL"),
        ({"shared_from": "bank-c"}, "--shared-from: 'bank-c' is not one of the --consortium-data"),
        ({"client_id": "not-a-guid"}, "--client-id: 'not-a-guid' is not a managed identity"),
        ({"advertise": "somewhere"}, "--advertise: 'somewhere' is not ADDRESS:PORT"),
        (
            {"data_port": "8780", "publish_container": None},
            "--data-port: serves the bank's publication",
        ),
        ({"monitor_port": "80"}, "--monitor-port: '80' is not a port"),
        ({"source": "/nonexistent/poactl.whl"}, "--source: '/nonexistent/poactl.whl' does not"),
        ({"prefix": "relative/root"}, "--prefix: 'relative/root' is not an absolute path"),
        ({"image": "bad image"}, "--image: 'bad image' is not an image reference"),
        ({"index_port": "80"}, "--index-port: '80' is not a port in 1024..65535"),
        ({"bogus": "1"}, "--bogus: unknown argument"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    tmp_path: Path, overrides: dict[str, str | None], message: str
) -> None:
    result = install(tmp_path, **overrides)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_flag_without_its_value_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "--prefix", str(tmp_path), "--member"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--member: needs a value" in result.stderr


def test_cloud_init_example_calls_the_script_with_arguments_it_accepts() -> None:
    example = REPO / "scripts" / "cloud-init.example.yaml"
    text = example.read_text()
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert {"docker.io", "python3-venv"} <= set(config["packages"])
    install_lines = [c for c in config["runcmd"] if isinstance(c, str) and "install_agent.sh" in c]
    assert len(install_lines) == 1
    flags = {word for word in install_lines[0].split() if word.startswith("--")}
    accepted = set(re.findall(r"--[a-z-]+", SCRIPT.read_text().split("while [ $# -gt 0 ]")[1]))
    assert flags <= accepted, flags - accepted
    assert {"--source", "--member", "--node", "--vault-url", "--storage-account-url"} <= flags


@pytest.mark.slow
def test_index_installs_the_read_index_config_and_unit(
    installed: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """`--index`: /etc/poactl/index.yaml that the index's own loader accepts (this node,
    the bank's store without publishing) and the poactl-index unit, enabled with the agent."""
    prefix, source, _ = installed
    args = {"--prefix": str(prefix), "--source": str(source), **GOOD, "--rpc-host": "10.1.0.4"}
    argv = [str(SCRIPT), *(p for pair in args.items() for p in pair), "--index",
            "--index-port", "8950", "--consortium", str(source / SAMPLE)]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/etc/poactl/index.yaml: written" in result.stdout
    assert "systemctl enable --now poactl-agent poactl-index" in result.stdout
    config = prefix / "etc/poactl/index.yaml"
    assert config.stat().st_mode & 0o777 == 0o640
    settings = load_index_config(config)
    assert (settings.member, settings.host, settings.port) == ("bank-a", "10.1.0.4", 8950)
    assert settings.rpc_urls == ["http://10.1.0.4:8545"]
    assert settings.state_dir == Path("/var/lib/poactl/index")
    assert settings.store is not None and settings.store.publish is None
    assert settings.store.consortium_data == {"bank-b": BANK_B_DATA}
    unit = (prefix / "etc/systemd/system/poactl-index.service").read_text()
    assert "ExecStart=/opt/poactl/venv/bin/poactl index --config /etc/poactl/index.yaml" in unit
    assert "User=poactl" in unit and "ReadWritePaths=/var/lib/poactl" in unit
    if shutil.which("systemd-analyze"):
        staged = tmp_path / "poactl-index.service"
        staged.write_text(unit.replace("ExecStart=/opt/", f"ExecStart={prefix}/opt/"))
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(staged)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert (verify.returncode, verify.stderr) == (0, "")
    # back to the agent alone (the index's files stay; nothing enables them)
    assert install(prefix, source, consortium=str(source / SAMPLE)).returncode == 0
