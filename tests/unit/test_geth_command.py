"""geth's argv and TOML as pure data, and finding/checking the pinned binary."""

from __future__ import annotations

import dataclasses
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from orchestrator.config import load_config, parse_config
from orchestrator.errors import ToolError
from orchestrator.geth.command import (
    GETH_VERSION,
    GethNode,
    check_geth_version,
    geth_argv,
    geth_config_toml,
    locate_geth,
)

SIGNER = "0x7e5f4552091A69125d5DFcD7B8C2659029395bDF"
SEALING_FLAGS = ["--mine", "--miner.etherbase", "--signer"]
# Flags of a geth that holds keys itself: none of them is ever passed.
KEY_FLAGS = ["--unlock", "--password", "--allow-insecure-unlock", "--rpc.enabledeprecatedpersonal"]


def _node(tmp: Path, *, validator: bool) -> GethNode:
    return GethNode(
        datadir=tmp / "datadir",
        config_file=tmp / "config.toml",
        ipc_path=tmp / "datadir" / "geth.ipc",
        network_id=7272,
        http_port=8545,
        authrpc_port=8651,
        max_peers=8,
        etherbase=SIGNER if validator else None,
        external_signer=tmp / "datadir" / "signer.ipc" if validator else None,
        gas_limit=30_000_000,
    )


def _value(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} should appear exactly once in {argv}"
    return argv[argv.index(flag) + 1]


@pytest.fixture(params=["validator", "rpc"])
def argv(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    return geth_argv("/opt/geth", _node(tmp_path, validator=request.param == "validator"))


def test_a_node_without_tuning_passes_no_tuning_flags(argv: list[str]) -> None:
    assert not [a for a in argv if a.startswith(("--cache", "--txpool.", "--miner.recommit"))]


def test_the_shipped_defaults_reach_every_file_that_leaves_them_out() -> None:
    """The measured defaults live in orchestrator/consortium.yaml alone: `poactl up` without
    a file, a file without `gas_limit` or `tuning` (`poactl join` builds one) get them;
    `tuning: {}` is geth's own setup (the benchmarks' baseline)."""
    shipped = load_config().settings
    assert shipped.gas_limit >= 60_000_000  # more than 1,000 credit records a second
    assert shipped.tuning.flags() and shipped.tuning.environment()
    bare = parse_config("members: {bank-a: {validators: 1}}\n", source="c.yaml").settings
    assert (bare.gas_limit, bare.tuning) == (shipped.gas_limit, shipped.tuning)
    geths = parse_config(
        "members: {bank-a: {validators: 1}}\ngas_limit: 30000000\ntuning: {}\n", source="c.yaml"
    ).settings
    assert (geths.gas_limit, geths.tuning.flags(), geths.tuning.environment()) == (
        30_000_000,
        (),
        {},
    )


def test_tuning_flags_follow_the_consortium_file(tmp_path: Path) -> None:
    tuning = parse_config(
        "members: {bank-a: {validators: 1}}\n"
        "tuning: {cache_mb: 128, recommit_seconds: 1, txpool_account_queue: 1024, "
        "gc_mode: archive}\n",
        source="c.yaml",
    ).settings.tuning
    node = dataclasses.replace(_node(tmp_path, validator=True), tuning=tuning.flags())
    argv = geth_argv("/opt/geth", node)
    assert _value(argv, "--cache") == "128"
    assert _value(argv, "--miner.recommit") == "1s"
    assert _value(argv, "--txpool.accountqueue") == "1024"
    assert _value(argv, "--gcmode") == "archive"
    assert "--txpool.globalslots" not in argv  # left out: geth's default


def test_memory_limit_goes_into_geths_environment_not_its_argv() -> None:
    tuning = parse_config(
        "members: {bank-a: {validators: 1}}\ntuning: {memory_limit_mb: 256}\n", source="c.yaml"
    ).settings.tuning
    assert tuning.environment() == {"GOMEMLIMIT": "256MiB"}
    assert tuning.flags() == ()
    geths = parse_config("members: {bank-a: {validators: 1}}\ntuning: {}\n", source="c.yaml")
    assert geths.settings.tuning.environment() == {}


@pytest.mark.geth
def test_pinned_geth_reads_the_tuning_flags_as_meant(geth: str) -> None:
    """geth 1.13.15 itself parses the flags (`dumpconfig` prints the config it would run
    with): a misspelt or renamed flag fails here, not on a bank's VM."""
    tuning = parse_config(
        "members: {bank-a: {validators: 1}}\n"
        "tuning: {cache_mb: 128, recommit_seconds: 1.5, txpool_account_slots: 32,\n"
        "         txpool_global_slots: 20000, txpool_account_queue: 1024,\n"
        "         txpool_global_queue: 4096}\n",
        source="c.yaml",
    ).settings.tuning
    out = subprocess.run(
        [geth, *tuning.flags(), "dumpconfig"], capture_output=True, text=True, check=True
    ).stdout
    eth = tomllib.loads(out)["Eth"]
    assert eth["DatabaseCache"] == 64  # geth gives half of --cache to the database
    assert eth["Miner"]["Recommit"] == 1_500_000_000  # nanoseconds
    assert (
        eth["TxPool"]["AccountSlots"],
        eth["TxPool"]["GlobalSlots"],
        eth["TxPool"]["AccountQueue"],
        eth["TxPool"]["GlobalQueue"],
    ) == (32, 20000, 1024, 4096)


def test_argv_is_pure(tmp_path: Path) -> None:
    node = _node(tmp_path, validator=True)
    assert geth_argv("/opt/geth", node) == geth_argv("/opt/geth", node)
    assert geth_argv("/opt/geth", node)[0] == "/opt/geth"
    assert not (tmp_path / "datadir").exists()  # builds argv, touches nothing


def test_http_is_loopback_with_only_eth_net_web3(argv: list[str]) -> None:
    assert "--http" in argv
    assert _value(argv, "--http.addr") == "127.0.0.1"
    assert _value(argv, "--http.port") == "8545"
    assert _value(argv, "--http.api") == "eth,net,web3"
    assert _value(argv, "--authrpc.addr") == "127.0.0.1"


@pytest.mark.parametrize("namespace", ["personal", "admin", "clique", "miner", "debug"])
def test_http_api_never_exposes_dangerous_namespaces(argv: list[str], namespace: str) -> None:
    assert namespace not in _value(argv, "--http.api").split(",")
    assert namespace not in _value(argv, "--ws.api").split(",")
    assert not any(a.startswith(("--http.api=", "--ws.api=")) for a in argv)


def test_websocket_shares_the_http_port_and_address(argv: list[str]) -> None:
    assert "--ws" in argv
    assert _value(argv, "--ws.port") == _value(argv, "--http.port")
    assert _value(argv, "--ws.addr") == "127.0.0.1"
    assert _value(argv, "--ws.api") == "eth,net,web3"


def test_peering_is_static_and_loopback_only(argv: list[str]) -> None:
    assert "--nodiscover" in argv
    assert _value(argv, "--netrestrict") == "127.0.0.0/8"
    assert _value(argv, "--nat") == "none"
    assert "--port" not in argv  # would listen on every interface; the TOML sets it


def test_validator_mines_through_the_external_signer_and_holds_no_key(tmp_path: Path) -> None:
    argv = geth_argv("/opt/geth", _node(tmp_path, validator=True))
    assert argv.count("--mine") == 1
    assert _value(argv, "--miner.etherbase") == SIGNER
    assert _value(argv, "--signer") == str(tmp_path / "datadir" / "signer.ipc")
    assert "personal" not in _value(argv, "--http.api").split(",")


def test_no_password_or_password_file_reaches_argv() -> None:
    # A fixed base dir: pytest's tmp_path would carry this test's name, "password" included.
    base = Path("/srv/poactl/nodes/bank-a-1")
    for validator in (True, False):
        argv = geth_argv("/opt/geth", _node(base, validator=validator))
        assert not any("password" in a.lower() for a in argv), argv


def test_validator_argv_is_the_rpc_argv_plus_the_sealing_flags(tmp_path: Path) -> None:
    validator = geth_argv("/opt/geth", _node(tmp_path, validator=True))
    rpc = geth_argv("/opt/geth", _node(tmp_path, validator=False))
    assert validator[: len(rpc)] == rpc
    assert validator[len(rpc) :] == [
        "--signer",
        str(tmp_path / "datadir" / "signer.ipc"),
        "--mine",
        "--miner.etherbase",
        SIGNER,
    ]


@pytest.mark.parametrize("flag", SEALING_FLAGS + KEY_FLAGS)
def test_rpc_node_gets_no_sealing_flags(tmp_path: Path, flag: str) -> None:
    argv = geth_argv("/opt/geth", _node(tmp_path, validator=False))
    assert flag not in argv
    assert not any(a.startswith(flag + "=") for a in argv)


@pytest.mark.parametrize("flag", KEY_FLAGS)
def test_no_node_gets_a_flag_of_a_geth_that_holds_keys(argv: list[str], flag: str) -> None:
    assert flag not in argv
    assert not any(a.startswith(flag + "=") for a in argv)


def test_geth_node_has_no_password_file_field(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="password_file"):
        GethNode(  # type: ignore[call-arg]
            datadir=tmp_path,
            config_file=tmp_path / "c.toml",
            ipc_path=tmp_path / "geth.ipc",
            network_id=1,
            http_port=8545,
            authrpc_port=8551,
            max_peers=8,
            etherbase=SIGNER,
            password_file=tmp_path / "pw",
        )


# -- TOML -----------------------------------------------------------------------------

ENODE_B = "enode://" + "b" * 128 + "@127.0.0.1:30305"
ENODE_A = "enode://" + "a" * 128 + "@127.0.0.1:30304"


def test_config_toml_listens_on_loopback_with_sorted_static_nodes() -> None:
    text = geth_config_toml(30303, [ENODE_B, ENODE_A])
    parsed = tomllib.loads(text)
    assert parsed == {
        "Node": {"P2P": {"ListenAddr": "127.0.0.1:30303", "StaticNodes": [ENODE_A, ENODE_B]}}
    }


def test_config_toml_does_not_depend_on_peer_order() -> None:
    assert geth_config_toml(1, [ENODE_A, ENODE_B]) == geth_config_toml(1, [ENODE_B, ENODE_A])


def test_config_toml_with_no_peers_is_valid() -> None:
    parsed = tomllib.loads(geth_config_toml(30303, []))
    assert parsed["Node"]["P2P"]["StaticNodes"] == []


# -- finding and checking geth --------------------------------------------------------


def _fake_geth(tmp_path: Path, version_line: str) -> Path:
    script = tmp_path / "geth"
    script.write_text(f"#!/bin/sh\necho Geth\necho '{version_line}'\necho 'Go Version: go1.22'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_wrong_geth_version_is_rejected_naming_the_pinned_one(tmp_path: Path) -> None:
    fake = _fake_geth(tmp_path, "Version: 1.14.0-stable")
    with pytest.raises(ToolError) as caught:
        check_geth_version(str(fake))
    message = str(caught.value)
    assert "1.14.0-stable" in message
    assert GETH_VERSION == "1.13.15"
    assert "1.13.15" in message
    assert str(fake) in message


def test_pinned_geth_version_is_accepted(tmp_path: Path) -> None:
    fake = _fake_geth(tmp_path, "Version: 1.13.15-stable")
    check_geth_version(str(fake))  # no error
    assert locate_geth(str(fake)) == str(fake.resolve())


def test_geth_that_prints_no_version_is_rejected(tmp_path: Path) -> None:
    fake = _fake_geth(tmp_path, "something else")
    with pytest.raises(ToolError, match="version unknown"):
        check_geth_version(str(fake))


def test_geth_that_fails_to_run_is_a_tool_error(tmp_path: Path) -> None:
    script = tmp_path / "geth"
    script.write_text("#!/bin/sh\nexit 7\n")
    script.chmod(0o755)
    with pytest.raises(ToolError, match="cannot run `geth version`") as caught:
        check_geth_version(str(script))
    assert "scripts/setup.sh" in str(caught.value)


def test_locate_geth_with_a_missing_explicit_path_hints_at_setup(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-geth"
    with pytest.raises(ToolError) as caught:
        locate_geth(str(missing))
    message = str(caught.value)
    assert str(missing) in message
    assert "not found" in message
    assert "scripts/setup.sh" in message
