"""`poactl azure operate`'s checks that need no chain (the boot rehearsal runs the rest on
a VM): the joining bank's descriptor must be the one its URL publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.azure.operate import Site, joining_member
from orchestrator.errors import ConfigError
from orchestrator.network.create import MemberInfo
from orchestrator.store.published import DirectoryData

INFO = MemberInfo("bank-c", ("0x" + "1" * 40,), "0x" + "2" * 40, "0x" + "3" * 40)


def site(folders: dict[str, Path]) -> Site:
    return Site(member="bank-a", store=None, vault=None, rpc_url="http://127.0.0.1:1",  # type: ignore[arg-type]
                open_data=lambda url: DirectoryData(folders[url]))  # fmt: skip


def test_the_joining_banks_descriptor_comes_from_its_own_url(tmp_path: Path) -> None:
    data = DirectoryData(tmp_path / "c")
    data.put("members/bank-c.json", INFO.as_json())
    assert joining_member(site({"u": tmp_path / "c"}), "u", "bank-c") == INFO


def test_a_url_that_publishes_another_bank_is_refused(tmp_path: Path) -> None:
    data = DirectoryData(tmp_path / "d")
    data.put("members/bank-d.json", INFO.as_json())
    with pytest.raises(ConfigError) as caught:
        joining_member(site({"u": tmp_path / "d"}), "u", "bank-c")
    assert "does not publish 'bank-c'" in str(caught.value) and "bank-d" in str(caught.value)
    assert caught.value.hint
