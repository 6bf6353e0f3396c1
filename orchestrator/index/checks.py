"""The checks every log passes before the index keeps it, and the decoding of the node's
raw logs into `IndexedLog`s.

A `Reported` log proves its own record: keccak256(head ‖ body ‖ tail)[0:16] is the
commitment in the state word logged with it, and that word's date of account information
is the record's. Each change of a tradeline (report, dispute, resolution) adds one to its
version, so a log's version is the one before it plus one (1 for the first); a dispute
or a resolution leaves the commitment and the date as they were. A log that breaks any of
these was not written by the registry as the index understood it (a node that answers
wrongly, a chain that is not the one the index was built from, or a bug): the follower
keeps nothing of its block and reports it (`LogRefused`).
"""

from __future__ import annotations

import functools
from typing import Any, cast

from eth_typing import ABIEvent
from eth_utils.abi import event_abi_to_log_topic

from orchestrator.credit.contract import registry_artifact
from orchestrator.credit.records import (
    REPORTED_DATA_BYTES,
    TradelineState,
    commitment,
    reported_fields,
)
from orchestrator.index.errors import LogRefused
from orchestrator.index.store import IndexedLog, Kind

DISPUTE_DATA_BYTES = 3 * 32  # state, change, by
CHANGES = (1, 2)  # the contract's Change enum: Disputed, Resolved (Reported has its own log)


@functools.cache
def topics() -> dict[bytes, Kind]:
    """topic0 -> event, from the registry's ABI."""
    found = {}
    for entry in registry_artifact().abi:
        if entry.get("type") == "event" and entry["name"] in ("Reported", "DisputeChanged"):
            kind = Kind.REPORTED if entry["name"] == "Reported" else Kind.DISPUTE_CHANGED
            found[bytes(event_abi_to_log_topic(cast(ABIEvent, entry)))] = kind
    return found


def topic_of(kind: Kind) -> bytes:
    return next(t for t, k in topics().items() if k is kind)


def decode(raw: dict[str, Any]) -> IndexedLog | None:
    """The `IndexedLog` of one raw JSON-RPC log of the registry (None: another event of
    it); LogRefused when its shape is not the event's."""
    where = _where(raw)
    try:
        raw_topics = [bytes.fromhex(t[2:]) for t in raw["topics"]]
        kind = topics().get(raw_topics[0]) if raw_topics else None
        if kind is None:
            return None
        data = bytes.fromhex(raw["data"][2:])
        want_topics, want_data = (
            (3, REPORTED_DATA_BYTES) if kind is Kind.REPORTED else (4, DISPUTE_DATA_BYTES)
        )
        if len(raw_topics) != want_topics or len(data) != want_data:
            raise LogRefused(
                f"{len(raw_topics)} topics and {len(data)} bytes of data, not the "
                f"{want_topics} and {want_data} of the registry's event",
                obj=where,
                hint=_HINT,
            )
        ref = data[:32] if kind is Kind.REPORTED else raw_topics[3]
        return IndexedLog(
            block_number=int(raw["blockNumber"], 16),
            block_hash=bytes.fromhex(raw["blockHash"][2:]),
            log_index=int(raw["logIndex"], 16),
            tx_hash=bytes.fromhex(raw["transactionHash"][2:]),
            kind=kind,
            subject=raw_topics[1],
            furnisher=raw_topics[2][12:],
            ref=ref,
            data=data,
        )
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise LogRefused(f"a malformed log ({type(e).__name__}: {e})", obj=where, hint=_HINT) from e


def state_of(entry: IndexedLog) -> TradelineState:
    """The tradeline's state after `entry` (the state word it carries)."""
    at = 32 if entry.kind is Kind.REPORTED else 0
    return TradelineState.of(int.from_bytes(entry.data[at : at + 32], "big"))


def check(entry: IndexedLog, before: IndexedLog | None) -> None:
    """Nothing if `entry` matches its own state word and follows `before` (the
    tradeline's previous log, None for its first); LogRefused otherwise."""
    state = state_of(entry)
    previous = state_of(before) if before is not None else None
    expected = 1 if previous is None else previous.version + 1
    problem = None
    if state.version != expected:
        problem = f"version {state.version} where {expected} was due"
    elif entry.kind is Kind.REPORTED:
        _, _, packed = reported_fields(entry.data)
        date = int.from_bytes(packed[60:64], "big")
        if commitment(packed) != state.commitment:
            problem = "its record does not match the commitment logged with it"
        elif date != state.date_of_account_information:
            problem = (
                f"its record's date of account information {date} is not the state "
                f"word's {state.date_of_account_information}"
            )
    elif previous is None:
        problem = "a dispute change of a tradeline that was never reported"
    elif int.from_bytes(entry.data[32:64], "big") not in CHANGES:
        problem = f"change {int.from_bytes(entry.data[32:64], 'big')} is not Disputed or Resolved"
    elif (state.commitment, state.date_of_account_information) != (
        previous.commitment,
        previous.date_of_account_information,
    ):
        problem = "a dispute change that altered the committed record"
    if problem is not None:
        raise LogRefused(problem, obj=_describe(entry), hint=_HINT)


_HINT = (
    "the index kept nothing of this block; check that the index follows the consortium's "
    "registry on your bank's own node, then rebuild it from the chain (`poactl index "
    "--rebuild`); if it persists, the node answers wrongly: follow another node of your bank"
)


def _describe(entry: IndexedLog) -> str:
    ref = entry.ref.rstrip(b"\0").decode("ascii", errors="replace")
    return (
        f"block {entry.block_number} log {entry.log_index} (subject 0x{entry.subject.hex()[:12]}…, "
        f"furnisher 0x{entry.furnisher.hex()}, account {ref!r})"
    )


def _where(raw: dict[str, Any]) -> str:
    block, index = raw.get("blockNumber"), raw.get("logIndex")
    return f"block {int(block, 16) if isinstance(block, str) else '?'} log " + (
        str(int(index, 16)) if isinstance(index, str) else "?"
    )


def log_json(entry: IndexedLog, registry: str) -> dict[str, Any]:
    """`entry` as `eth_getLogs` gives it (what the index answers readers)."""
    topics = [topic_of(entry.kind), entry.subject, entry.furnisher.rjust(32, b"\0")]
    if entry.kind is Kind.DISPUTE_CHANGED:
        topics.append(entry.ref)
    return {
        "address": registry,
        "blockNumber": hex(entry.block_number),
        "blockHash": "0x" + entry.block_hash.hex(),
        "logIndex": hex(entry.log_index),
        "transactionHash": "0x" + entry.tx_hash.hex(),
        "topics": ["0x" + t.hex() for t in topics],
        "data": "0x" + entry.data.hex(),
        "removed": False,
    }
