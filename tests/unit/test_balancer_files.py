"""The balancer's files: a new configuration and tokens map are checked by Debian's
`haproxy -c` before they replace the running ones; a refused pair changes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.balancer.service import Paths, write_files
from orchestrator.balancer.settings import BalancerFile, NodeEntry
from orchestrator.balancer.tokens import create_token, read_token
from orchestrator.errors import NodeError


def settings(tmp_path: Path, host: str = "127.0.0.1") -> BalancerFile:
    return BalancerFile(
        member="bank-a", port=18645, filter_port=18665, pool_port=18666,
        state_dir=tmp_path / "balancer", tokens_dir=tmp_path / "tokens",
        nodes=[NodeEntry(name="bank-a-1", host=host, http_port=18545, health_port=18745,
                         p2p_port=30303, peer_port=30403)],
    )  # fmt: skip


def test_a_checked_pair_is_put_in_place(tmp_path: Path) -> None:
    token = read_token(create_token(tmp_path / "tokens", "teller"))
    paths = Paths(tmp_path / "balancer")
    write_files(settings(tmp_path), paths)
    assert "default-path config" in paths.config.read_text()
    assert "map_str(tokens.map)" in paths.config.read_text()  # beside the configuration
    assert paths.tokens_map.read_text() == f"{token} teller\n"
    assert stat.S_IMODE(paths.tokens_map.stat().st_mode) == 0o600
    assert not paths.next.exists()


def test_a_refused_configuration_leaves_the_running_files_untouched(tmp_path: Path) -> None:
    create_token(tmp_path / "tokens", "teller")
    paths = Paths(tmp_path / "balancer")
    write_files(settings(tmp_path), paths)
    running = paths.config.read_bytes(), paths.tokens_map.read_bytes()
    create_token(tmp_path / "tokens", "branch")  # a new application...
    with pytest.raises(NodeError, match="HAProxy refuses the generated configuration") as e:
        write_files(settings(tmp_path, host="no-such-host.invalid"), paths)  # ...and a typo
    assert "no-such-host.invalid" in e.value.what
    assert "the running configuration is unchanged" in (e.value.hint or "")
    assert (paths.config.read_bytes(), paths.tokens_map.read_bytes()) == running
    assert not paths.next.exists()
    write_files(settings(tmp_path), paths)  # fixed: both tokens now
    assert sorted(line.split()[1] for line in paths.tokens_map.read_text().splitlines()) == [
        "branch",
        "teller",
    ]
