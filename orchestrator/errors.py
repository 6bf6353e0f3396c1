"""The one error tree of poactl.

Every error says what happened, names the object it happened to (a node, a file, a
config key) and gives a hint with the operator's next step. The CLI maps the tree to
exit codes in one place (`orchestrator.cli.common`). Normal answers (a node that is down, a
lease someone else holds) are return values, never exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class PoaError(Exception):
    """Base of every error poactl raises on purpose."""

    exit_code = 1

    def __init__(self, what: str, *, obj: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.obj = obj
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.obj}: {self.what}" if self.obj else self.what
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class ConfigError(PoaError):
    """The consortium file (or a command-line value) is not valid."""


class StateError(PoaError):
    """The state directory is missing, incomplete, locked or belongs to another config."""


class ToolError(PoaError):
    """A required program (geth) is missing or is the wrong version."""


class NodeError(PoaError):
    """A node could not be initialised, started or stopped."""


class NodeUnreachable(NodeError):
    """geth could not be asked: its IPC socket is missing, refuses, or did not answer in
    time. (An answer of `null` is an answer, not this error.)"""


class RpcRefused(NodeError):
    """geth answered a JSON-RPC call with an error object."""


class SignerError(PoaError):
    """geth's external signer (the agent) refused a request or could not sign it."""


class TransactionError(PoaError):
    """A transaction or a contract call failed: the node refused it, it reverted, or it
    ran out of gas. Nothing more is sent for it; the message says what to fix."""


class ContractRevert(TransactionError):
    """A contract refused a call with one of its custom errors, decoded from its ABI."""

    def __init__(
        self,
        error: str,
        args: Mapping[str, object],
        *,
        contract: str = "contract",
        obj: str | None = None,
        hint: str | None = None,
        tx_hash: str | None = None,
    ) -> None:
        self.error = error
        self.args_by_name = dict(args)
        self.tx_hash = tx_hash
        shown = ", ".join(f"{k}={v}" for k, v in args.items())
        where = f" (transaction {tx_hash})" if tx_hash else ""
        super().__init__(f"the {contract} refused: {error}({shown}){where}", obj=obj, hint=hint)


class ServiceUnavailable(PoaError):
    """A backend (store, vault, container API) did not answer or answered with a transient
    error. Callers retry it with a deadline (`orchestrator.retry`)."""


class AccessDenied(PoaError):
    """A backend refused our credentials or permissions. Never retried: the operator must
    fix the identity, the key or the role assignment."""


class WaitTimeout(PoaError):
    """A waiting step ran out of time; carries the elapsed time, last state and logs."""

    def __init__(
        self,
        what: str,
        *,
        elapsed: float,
        last_state: str,
        log_tail: Sequence[str] = (),
        obj: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.elapsed = elapsed
        self.last_state = last_state
        self.log_tail = list(log_tail)
        super().__init__(what, obj=obj, hint=hint)

    def __str__(self) -> str:
        lines = [
            super().__str__(),
            f"  waited: {self.elapsed:.1f}s",
            f"  last state: {self.last_state}",
        ]
        if self.log_tail:
            lines.append("  last log lines:")
            lines.extend(f"    {line}" for line in self.log_tail)
        return "\n".join(lines)


class LabError(PoaError):
    """The network lab (`poactl lab`, the fault suite) could not make or change its
    namespaces, links or rules, or cannot run on this machine at all."""
