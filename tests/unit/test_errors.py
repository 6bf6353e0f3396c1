"""Every poactl error says what happened, to which object, and what to do next."""

from __future__ import annotations

import pytest

from orchestrator.credit.errors import CreditError
from orchestrator.errors import (
    AccessDenied,
    ConfigError,
    ContractRevert,
    LabError,
    NodeError,
    NodeUnreachable,
    PoaError,
    RpcRefused,
    ServiceUnavailable,
    SignerError,
    StateError,
    ToolError,
    TransactionError,
    WaitTimeout,
)
from orchestrator.index.errors import LogRefused
from orchestrator.signer.header import NotACliqueHeader
from orchestrator.signer.keys import SigningFailed
from orchestrator.signer.policy import Refused

SIMPLE = [
    ConfigError,
    StateError,
    ToolError,
    NodeError,
    ServiceUnavailable,
    AccessDenied,
    CreditError,
    SignerError,
    TransactionError,
    LabError,
]
# Subclasses of those, each with its own meaning to the code that catches it.
DEEPER = [NodeUnreachable, RpcRefused, Refused, NotACliqueHeader, SigningFailed, LogRefused]
# Subclasses whose message has its own shape (tested below).
OWN_SHAPE = [ContractRevert]


def _make(cls: type[PoaError], *, obj: str | None, hint: str | None) -> PoaError:
    if cls is WaitTimeout:
        return WaitTimeout("ran out of time", elapsed=3.25, last_state="head 4", obj=obj, hint=hint)
    return cls("ran out of time", obj=obj, hint=hint)


def test_every_subclass_is_covered() -> None:
    assert set(PoaError.__subclasses__()) == {*SIMPLE, WaitTimeout}


def test_every_deeper_subclass_is_listed() -> None:
    def below(cls: type[PoaError]) -> set[type[PoaError]]:
        return {c for sub in cls.__subclasses__() for c in {sub, *below(sub)}}

    orchestrator_errors = {
        c
        for c in below(PoaError)
        if c.__module__.startswith("orchestrator") and not c.__name__.startswith("_")
    }
    credit = {c for c in orchestrator_errors if c.__module__.startswith("orchestrator.credit")}
    assert orchestrator_errors - credit - {*SIMPLE, WaitTimeout} == {*DEEPER, *OWN_SHAPE}


def test_a_contract_revert_names_the_contract_the_rule_and_its_arguments() -> None:
    err = ContractRevert(
        "OverCap", {"member": "0xA", "wanted": 3, "cap": 2},
        contract="governance", hint="remove one first", tx_hash="0x12",
    )  # fmt: skip
    assert str(err) == (
        "the governance refused: OverCap(member=0xA, wanted=3, cap=2) (transaction 0x12)\n"
        "  hint: remove one first"
    )
    assert isinstance(err, TransactionError) and err.error == "OverCap"


@pytest.mark.parametrize("cls", [*SIMPLE, WaitTimeout, *DEEPER])
def test_message_has_object_what_and_hint(cls: type[PoaError]) -> None:
    err = _make(cls, obj="bank-a-1", hint="run `poactl down` first")
    message = str(err)
    assert message.startswith("bank-a-1: ran out of time\n")
    assert "\n  hint: run `poactl down` first" in message
    assert err.exit_code == 1
    assert (err.what, err.obj, err.hint) == (
        "ran out of time",
        "bank-a-1",
        "run `poactl down` first",
    )
    assert isinstance(err, Exception)


@pytest.mark.parametrize("cls", [*SIMPLE, WaitTimeout, *DEEPER])
def test_object_and_hint_are_optional(cls: type[PoaError]) -> None:
    message = str(_make(cls, obj=None, hint=None))
    assert message.startswith("ran out of time")
    assert "hint" not in message
    assert ": ran out of time" not in message


@pytest.mark.parametrize("cls", SIMPLE)
def test_error_can_be_raised_and_caught_as_poa_error(cls: type[PoaError]) -> None:
    with pytest.raises(PoaError, match=r"^f\.yaml: bad\n  hint: fix it$"):
        raise cls("bad", obj="f.yaml", hint="fix it")


def test_wait_timeout_reports_elapsed_last_state_and_log_lines() -> None:
    err = WaitTimeout(
        "not every validator sealed a block in time",
        elapsed=42.04,
        last_state="head 7, waiting for: bank-b-2",
        log_tail=["INFO [01-01] Commit new sealing work", "WARN [01-01] Block sealing failed"],
        obj="/state",
        hint="a slow machine may need a longer --timeout",
    )
    message = str(err)
    assert message.startswith("/state: not every validator sealed a block in time\n")
    assert "hint: a slow machine may need a longer --timeout" in message
    assert "waited: 42.0s" in message
    assert "last state: head 7, waiting for: bank-b-2" in message
    assert "last log lines:" in message
    assert "    INFO [01-01] Commit new sealing work" in message
    assert message.endswith("    WARN [01-01] Block sealing failed")
    assert err.elapsed == 42.04
    assert err.log_tail == [
        "INFO [01-01] Commit new sealing work",
        "WARN [01-01] Block sealing failed",
    ]


def test_wait_timeout_without_logs_says_nothing_about_logs() -> None:
    message = str(WaitTimeout("slow", elapsed=1.0, last_state="STARTING"))
    assert "waited: 1.0s" in message
    assert "last state: STARTING" in message
    assert "log lines" not in message
