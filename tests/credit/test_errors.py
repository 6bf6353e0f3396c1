"""The credit layer's errors: under PoaError, with what, object and hint in the message."""

from __future__ import annotations

import pytest

from orchestrator.credit import ContractRevert, CreditError, InvalidRecord
from orchestrator.errors import PoaError


def test_credit_error_is_a_poa_error_with_object_and_hint() -> None:
    e = CreditError("the node refused the report", obj="0xabc", hint="check the balance")
    assert isinstance(e, PoaError) and e.exit_code == 1
    assert str(e) == "0xabc: the node refused the report\n  hint: check the balance"
    with pytest.raises(PoaError, match=r"^0xabc: the node refused"):
        raise e


def test_invalid_record_names_field_value_and_allowed() -> None:
    e = InvalidRecord("account_status", "99", "05, 11, 13")
    assert isinstance(e, CreditError)
    assert (e.field, e.value, e.allowed) == ("account_status", "99", "05, 11, 13")
    assert str(e) == (
        "account_status: '99' is not allowed; expected 05, 11, 13\n"
        "  hint: fix the record and send it again; nothing was sent to the chain"
    )


def test_contract_revert_shows_the_error_its_arguments_and_the_transaction() -> None:
    e = ContractRevert("NotFurnisher", {"caller": "0xB", "furnisher": "0xA"}, hint="own only")
    assert isinstance(e, CreditError)
    assert (e.error, e.args_by_name, e.tx_hash) == (
        "NotFurnisher",
        {"caller": "0xB", "furnisher": "0xA"},
        None,
    )
    assert str(e) == (
        "the registry refused: NotFurnisher(caller=0xB, furnisher=0xA)\n  hint: own only"
    )
    mined = ContractRevert("NotMember", {"account": "0xC"}, tx_hash="0x12")
    assert str(mined) == "the registry refused: NotMember(account=0xC) (transaction 0x12)"
