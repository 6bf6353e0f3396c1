"""Fuzzers for what poactl reads from outside: the balancer's JSON-RPC filter, the
Metro 2 / JSON Lines reader, the consortium file and the signer's Clique header parser.

Each property is the same: no crash (only the module's own clear error, a PoaError with
a message), and nothing written or forwarded that was not checked. Inputs are built
from valid ones and then broken (fields swapped, cut, duplicated, case-folded, bytes
flipped) as well as drawn at random, so the fuzzer reaches past the first parse.

CI runs a few hundred cases each (`POACTL_FUZZ` unset); `POACTL_FUZZ=full` runs 10,000
each (scripts/bench/faults.py does, and reports the counts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.balancer.filter import Filter
from orchestrator.balancer.jsonrpc import ALLOWED, READS, canonical_json
from orchestrator.config import default_config_text, parse_config
from orchestrator.credit.furnishing_file import read_furnishing_file
from orchestrator.credit.metro2 import format_base_segment, format_header, format_trailer
from orchestrator.errors import ConfigError, PoaError
from orchestrator.signer.header import CliqueHeader, NotACliqueHeader, parse_clique_header
from tests.credit.test_metro2 import GOOD, LATE, PAID

FULL = os.environ.get("POACTL_FUZZ") == "full"
settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
settings.register_profile("full", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
PROFILE = settings.get_profile("full" if FULL else "ci")

# -- the JSON-RPC filter ---------------------------------------------------------------

FORBIDDEN = [
    "eth_sign",
    "eth_sendTransaction",
    "personal_unlockAccount",
    "admin_addPeer",
    "miner_start",
    "debug_traceTransaction",
    "eth_subscribe",
    "clique_propose",
]
METHODS = [*sorted(READS)[:6], "eth_sendRawTransaction", *FORBIDDEN]
KEYS = ["jsonrpc", "id", "method", "params", "Method", "METHOD", "mEtHoD", "PARAMS",
        "param\u017f", "\u212aey", "meth\u0131od", "method ", "methodx", ""]  # fmt: skip
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(METHODS))  # fmt: skip
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12)  # fmt: skip
pairs = st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=7)


def _object(items: list[tuple[str, Any]]) -> str:
    """A JSON object that may repeat a key (json.dumps of a dict cannot)."""
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items) + "}"


request_text = st.one_of(pairs.map(_object), values.map(json.dumps))
bodies = st.one_of(
    request_text.map(str.encode),
    st.lists(request_text, max_size=5).map(lambda r: ("[" + ",".join(r) + "]").encode()),
    st.binary(max_size=200),
)  # fmt: skip


class _Recording(Filter):
    """The filter with its node pool replaced by a recorder (the boundary it forwards to)."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0, "http://127.0.0.1:1")
        self.sent: list[dict[str, Any]] = []

    async def _post(self, forward: list[dict[str, Any]]) -> list[Any]:
        self.sent += forward
        return [{"jsonrpc": "2.0", "id": f["id"], "result": "0x0"} for f in forward]


def _checked(sent: dict[str, Any]) -> None:
    assert set(sent) == {"jsonrpc", "id", "method", "params"}, sent
    assert sent["method"] in ALLOWED and isinstance(sent["params"], list), sent
    assert json.loads(canonical_json(sent)) == sent


@PROFILE
@given(bodies)
def test_the_filter_forwards_only_checked_canonical_requests(body: bytes) -> None:
    f = _Recording()
    reply = asyncio.run(f.answer(body))
    assert isinstance(reply, (dict, list)) or reply is None
    for sent in f.sent:
        _checked(sent)
    for text, to_client in f._frame(body):  # the WebSocket path reads the same way
        if not to_client:
            message = json.loads(text)
            for sent in message if isinstance(message, list) else [message]:
                assert sent["method"] in ALLOWED | {"eth_subscribe", "eth_unsubscribe"}


# -- the Metro 2 / JSON Lines reader ---------------------------------------------------

TODAY = dt.date(2024, 6, 15)
_SEGMENTS = [
    format_base_segment(r, national_id=n, account_number=a)
    for n, a, r in [
        ("123456789", "LOAN-1", GOOD),
        ("987654321", "CARD-2", LATE),
        ("555012222", "LOAN-3", PAID),
    ]
]
_FILE = [format_header("BANK", TODAY), *_SEGMENTS, format_trailer(len(_SEGMENTS))]
_JSONL = [
    '{"national_id": "123456789", "account_number": "A1", "portfolio_type": "I", '
    '"account_type": "00", "date_opened": "2022-01-10", "current_balance": 10}'
]


@st.composite
def furnishing_files(draw: st.DrawFn) -> bytes:
    lines = list(draw(st.sampled_from([_FILE, _JSONL])))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "dup", "drop", "insert", "swap"]))
        line = lines[i]
        if kind == "flip" and line:
            at = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:at] + draw(st.characters()) + line[at + 1 :]
        elif kind == "cut":
            lines[i] = line[: draw(st.integers(0, len(line)))]
        elif kind == "dup":
            lines.insert(i, line)
        elif kind == "drop" and len(lines) > 1:
            del lines[i]
        elif kind == "insert":
            lines.insert(i, draw(st.text(max_size=500)))
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    text = "\n".join(lines).encode("utf-8", "surrogatepass")
    return draw(st.one_of(st.just(text), st.binary(max_size=300)))


@PROFILE
@given(furnishing_files())
def test_the_furnishing_reader_refuses_bad_lines_clearly_and_writes_nothing(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "portfolio.m2"
        path.write_bytes(data)
        try:
            read = read_furnishing_file(path, account_ref=lambda i, a: f"ref-{i}-{a}", today=TODAY)
        except ConfigError as e:
            assert e.what and e.hint, e
        else:
            count = data.count(b"\n") + 1
            for p in read.problems:
                assert 1 <= p.line <= count and p.field and p.rule, p
            for r in read.records:
                assert 1 <= r.line <= count
        assert os.listdir(d) == ["portfolio.m2"]


# -- the consortium file -----------------------------------------------------------------

SCHEMA_KEYS = ["chain_id", "block_period", "epoch", "gas_limit", "ports", "members",
               "supervision", "tuning", "runtime", "balancer", "governance", "p2p", "http",
               "validators", "spares", "rpc_nodes", "custody", "bank-a", "bank-b", "lease_seconds",
               "kind", "geth", "peering", "max_body_kb", "validator_floor"]  # fmt: skip
yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(SCHEMA_KEYS), inner, max_size=4)),
    max_leaves=15)  # fmt: skip
_DEFAULT = default_config_text().splitlines()


@st.composite
def consortium_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["structured", "mutated", "raw"]))
    if kind == "structured":
        return json.dumps(draw(st.dictionaries(st.sampled_from(SCHEMA_KEYS), yaml_values)))
    if kind == "raw":
        return draw(st.text(max_size=300))
    lines = list(_DEFAULT)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(
            st.one_of(
                st.text(max_size=40),
                st.just(lines[i][: len(lines[i]) // 2]),
                st.just("  " + lines[i]),
                st.just(lines[i].replace("2", "-2")),
            )
        )
    return "\n".join(lines)


@PROFILE
@given(consortium_texts())
def test_a_broken_consortium_file_gets_a_clear_error(text: str) -> None:
    try:
        consortium = parse_config(text, source="fuzz.yaml")
    except ConfigError as e:
        assert "fuzz.yaml" in str(e) and e.hint, e
    else:
        assert consortium.nodes and all(n.is_validator or n.role == "rpc" for n in consortium.nodes)


# -- the signer's Clique header parser -----------------------------------------------------

_HEADER = [b"\x11" * 32, b"\x22" * 32, bytes(20), b"\x33" * 32, b"\x44" * 32, b"\x55" * 32,
           bytes(256), b"\x02", b"\x05", b"\x01\xc9\xc3\x80", b"", b"\x65\x00\x00\x00",
           b"\x00" * 32, bytes(32), b"\x00" * 8, b"\x07"]  # fmt: skip
fields = st.one_of(st.binary(max_size=40), st.lists(st.binary(max_size=4), max_size=2))


@st.composite
def header_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=700))
    header: list[Any] = list(_HEADER)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(header) - 1))
        header[i] = draw(fields)
    if draw(st.booleans()):
        header = header[: draw(st.integers(0, len(header)))]
    encoded: bytes = rlp.encode(header)
    if draw(st.booleans()) and encoded:
        at = draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:at] + bytes([draw(st.integers(0, 255))]) + encoded[at + 1 :]
    return encoded


@PROFILE
@given(header_bytes())
def test_the_header_parser_reads_a_clique_header_or_refuses_it(data: bytes) -> None:
    try:
        header = parse_clique_header(data)
    except NotACliqueHeader as e:
        assert isinstance(e, PoaError) and e.what
    else:
        assert isinstance(header, CliqueHeader) and header.seal_hash == keccak(data)
