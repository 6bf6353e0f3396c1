"""The credit layer's errors, under poactl's one tree (`PoaError`).

`InvalidRecord` is raised on the client before anything is signed or sent: it names the
field, the value and what is allowed. `ContractRevert` carries the registry's own custom
error, decoded from the ABI (`NotMember`, `NotFurnisher`, ...), and says it plainly.
Transport failures are `ServiceUnavailable` (transient); waiting too long is `WaitTimeout`.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator import errors
from orchestrator.errors import PoaError


class CreditError(PoaError):
    """Base of the credit-record errors."""


class InvalidRecord(CreditError):
    """A field of a record, a subject or a code is not allowed (checked client-side)."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(
            f"{value!r} is not allowed; expected {allowed}",
            obj=field,
            hint="fix the record and send it again; nothing was sent to the chain",
        )


class ContractRevert(errors.ContractRevert, CreditError):
    """The CreditRegistry refused the call with one of its custom errors."""

    def __init__(
        self,
        error: str,
        args: Mapping[str, object],
        *,
        obj: str | None = None,
        hint: str | None = None,
        tx_hash: str | None = None,
    ) -> None:
        super().__init__(error, args, contract="registry", obj=obj, hint=hint, tx_hash=tx_hash)
