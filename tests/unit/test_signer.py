"""geth's external signer: the header it reads, the signature it returns, the policy that
decides, and the clef protocol on its socket.

The lease is the real `LeaseKeeper` on the real embedded store (the high-water mark
lives in the lease blob), the keys are real secp256k1 keys, and the socket is a real
unix socket spoken to the way geth's IPC client speaks.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rlp
from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils.crypto import keccak

from orchestrator.boundaries import Secret
from orchestrator.geth.keys import follower_address
from orchestrator.network.leases import LeaseKeeper
from orchestrator.signer.header import NONCE_AUTH, NotACliqueHeader, parse_clique_header
from orchestrator.signer.keys import (
    SECP256K1_N,
    KeyInMemory,
    KeyInVault,
    SigningFailed,
    clique_signature,
)
from orchestrator.signer.policy import (
    CLIQUE_HEADER,
    MAX_HUNG_CALLS,
    PUBLISH_WAIT_SECONDS,
    RESIGN_MARGIN_SECONDS,
    Refused,
    SigningPolicy,
)
from orchestrator.signer.server import SignerServer
from orchestrator.store.local import LocalStore
from orchestrator.vault.local import LocalVault
from tests.helpers.waiting import wait_for

KEY = Secret("0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ADDRESS = Account.from_key(KEY.value).address
LEASE = "leases/bank-a/identity-0"
PERIOD = 2


def header(number: int, *, at: float | None = None, fields: int = 16, **changes: bytes) -> bytes:
    """CliqueRLP of a London header at `number`, stamped `at` (default: now)."""
    stamp = int(time.time() if at is None else at)
    values = [
        b"\x11" * 32, b"\x22" * 32, bytes(20), b"\x33" * 32, b"\x44" * 32, b"\x55" * 32,
        bytes(256), b"\x02", number.to_bytes(8, "big").lstrip(b"\0"),
        (30_000_000).to_bytes(4, "big"), b"", stamp.to_bytes(8, "big").lstrip(b"\0"),
        b"poactl".ljust(32, b"\0"), bytes(32), bytes(8), b"\x07",
    ][:fields]  # fmt: skip
    named = {"coinbase": 2, "nonce": 14, "extra": 12}
    for name, value in changes.items():
        values[named[name]] = value
    return bytes(rlp.encode(values))


def recovers_to(digest: bytes, signature: bytes, address: str) -> bool:
    recovered = eth_keys.Signature(signature).recover_public_key_from_msg_hash(digest)
    return bool(recovered.to_checksum_address() == address)


# -- the header ---------------------------------------------------------------------------


def test_a_london_header_parses_and_its_seal_hash_is_keccak_of_the_data() -> None:
    data = header(42, at=1_700_000_000)
    parsed = parse_clique_header(data)
    assert (parsed.number, parsed.time) == (42, 1_700_000_000)
    assert parsed.seal_hash == keccak(data)
    assert parsed.vote is None


def test_a_vote_is_read_from_coinbase_and_nonce() -> None:
    parsed = parse_clique_header(header(7, coinbase=b"\xab" * 20, nonce=NONCE_AUTH))
    assert parsed.vote == ("0x" + "ab" * 20, True)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01not rlp",
        bytes(rlp.encode([b"a", b"b"])),  # too few fields
        header(1, fields=14),
        header(1, coinbase=b"\x01" * 19),  # a 19-byte address
        header(1, nonce=b"\x01" * 8),  # neither an add nor a drop vote
        header(1, extra=b"short"),  # no 32-byte vanity
        bytes(rlp.encode([[b"x"]] * 16)),  # lists, not byte strings
    ],
)
def test_anything_else_is_not_a_clique_header(data: bytes) -> None:
    with pytest.raises(NotACliqueHeader):
        parse_clique_header(data)


# -- the signature ------------------------------------------------------------------------


def test_a_key_in_memory_signs_low_s_with_v_0_or_1() -> None:
    digest = keccak(b"a header")
    signature = KeyInMemory(KEY).sign(digest)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert recovers_to(digest, signature, ADDRESS)
    assert "4c0883" not in repr(KeyInMemory(KEY))


def test_a_high_s_answer_is_lowered_and_given_its_recovery_id() -> None:
    digest = keccak(b"another header")
    good = KeyInMemory(KEY).sign(digest)
    r, s = good[:32], int.from_bytes(good[32:64], "big")
    high = r + (SECP256K1_N - s).to_bytes(32, "big")  # what a vault may answer
    assert clique_signature(digest, high, ADDRESS) == good


def test_a_vault_key_signs_through_the_vault_and_is_normalised(tmp_path: Path) -> None:
    vault = LocalVault(tmp_path / "vault")
    public = vault.create_signing_key("bank-a-validator-0-key")
    address = eth_keys.PublicKey(public).to_checksum_address()
    key = KeyInVault(
        "bank-a-validator-0-key", address, lambda d: vault.sign_digest("bank-a-validator-0-key", d)
    )
    for n in range(8):  # random nonces: both halves of s show up and are handled
        digest = keccak(f"header {n}".encode())
        signature = key.sign(digest)
        assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
        assert recovers_to(digest, signature, address)


@pytest.mark.parametrize("answer", [b"\x01" * 63, b"\x00" * 64, b"\xff" * 64])
def test_a_short_or_out_of_range_answer_is_refused(answer: bytes) -> None:
    with pytest.raises(SigningFailed):
        clique_signature(keccak(b"h"), answer, ADDRESS)


def test_a_signature_by_another_key_is_refused() -> None:
    digest = keccak(b"h")
    other = KeyInMemory(Secret(Account.create().key.hex())).sign(digest)
    with pytest.raises(SigningFailed, match="does not recover"):
        clique_signature(digest, other[:64], ADDRESS)


# -- the policy ----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store.sqlite")


def keeper(store: LocalStore, holder: str) -> LeaseKeeper:
    k = LeaseKeeper(store, LEASE, duration=15, holder=holder, margin=6.5)
    assert k.try_acquire()
    return k


@pytest.fixture
def policy() -> SigningPolicy:
    return SigningPolicy(follower=follower_address("bank-a-1"), block_period=PERIOD)


def sign(policy: SigningPolicy, number: int, **kw: object) -> bytes:
    return policy.sign_data(CLIQUE_HEADER, ADDRESS, header(number, **kw))  # type: ignore[arg-type]


def test_a_held_identity_signs_its_header(policy: SigningPolicy, store: LocalStore) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    data = header(5)
    signature = policy.sign_data(CLIQUE_HEADER, ADDRESS.lower(), data)
    assert recovers_to(keccak(data), signature, ADDRESS)
    assert policy.accounts() == [follower_address("bank-a-1"), ADDRESS]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "data/typed", "data/validator", "application/json", ""]
)
def test_only_clique_headers_are_signed(
    policy: SigningPolicy, store: LocalStore, content_type: str
) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    with pytest.raises(Refused, match="Clique headers only"):
        policy.sign_data(content_type, ADDRESS, header(5))


def test_nothing_is_signed_for_an_identity_not_held(
    policy: SigningPolicy, store: LocalStore
) -> None:
    with pytest.raises(Refused, match="not the identity"):
        sign(policy, 5)  # nothing held yet
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    with pytest.raises(Refused, match="not the identity"):
        policy.sign_data(CLIQUE_HEADER, follower_address("bank-a-1"), header(5))


def test_a_height_is_recorded_with_the_lease_before_it_is_signed(
    policy: SigningPolicy, store: LocalStore
) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    sign(policy, 9)
    blob = store.read(LEASE)
    assert blob is not None and json.loads(blob.data)["signed"] == 9


def test_the_holder_re_signs_its_own_height_but_never_a_lower_one(
    policy: SigningPolicy, store: LocalStore
) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    due = time.time() + PERIOD  # geth signs a block before its time, then waits
    sign(policy, 9, at=due)
    sign(policy, 9, at=due, extra=b"poactl-refreshed".ljust(32, b"\0"))  # new transactions
    with pytest.raises(Refused, match="below 9"):
        sign(policy, 8)


def test_once_a_versions_time_has_come_no_other_version_of_that_height_is_signed(
    store: LocalStore,
) -> None:
    """geth's recommit offers a second version of height 9 after the first one's time:
    the first may be out already (a loaded machine, a late parent), so the second would
    be a second block at one height by one identity. The same header may be signed again."""
    now = [time.time()]
    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, clock=lambda: now[0]
    )
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    due = int(now[0]) + PERIOD
    first = header(9, at=due)
    policy.sign_data(CLIQUE_HEADER, ADDRESS, first)
    refreshed = header(9, at=due, extra=b"poactl-refreshed".ljust(32, b"\0"))
    now[0] = due - RESIGN_MARGIN_SECONDS - 0.1
    policy.sign_data(CLIQUE_HEADER, ADDRESS, refreshed)  # still before its time: fine
    now[0] = due - RESIGN_MARGIN_SECONDS + 0.1
    later = header(9, at=due, extra=b"poactl-later".ljust(32, b"\0"))
    with pytest.raises(Refused, match=r"its time has come .* cannot be asked"):
        policy.sign_data(CLIQUE_HEADER, ADDRESS, later)  # and geth's chain cannot tell
    policy.sign_data(CLIQUE_HEADER, ADDRESS, refreshed)  # the latest, again: no new block
    with pytest.raises(Refused, match="another parent"):
        now[0] = due - PERIOD
        policy.sign_data(
            CLIQUE_HEADER, ADDRESS,
            bytes(rlp.encode([b"\x99" * 32, *rlp.decode(header(9, at=due))[1:]])),
        )  # fmt: skip
    now[0] = due + 0.5
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(10, at=due + PERIOD))  # the next height


@pytest.mark.parametrize(("in_chain", "signed"), [(False, True), (True, False), (None, False)])
def test_after_its_time_another_version_is_signed_only_if_geths_chain_lacks_the_first(
    store: LocalStore, in_chain: bool | None, signed: bool
) -> None:
    """geth drops the older version before it asks for a new one; whether the older one
    went out first, its chain says (None: geth could not be asked: refused, safely)."""
    now = [time.time()]
    asked: list[int] = []

    def published(height: int) -> bool | None:
        asked.append(height)
        return in_chain

    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, clock=lambda: now[0],
        published=published,
    )  # fmt: skip
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    due = int(now[0]) + 1
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due))
    now[0] = due + 0.2  # the recommit came after the first version's time
    refreshed = header(9, at=due, extra=b"poactl-refreshed".ljust(32, b"\0"))
    started = time.monotonic()
    if signed:
        assert len(policy.sign_data(CLIQUE_HEADER, ADDRESS, refreshed)) == 65
        assert time.monotonic() - started >= PUBLISH_WAIT_SECONDS  # it watched the chain
    else:
        with pytest.raises(Refused, match="no second block at one height"):
            policy.sign_data(CLIQUE_HEADER, ADDRESS, refreshed)
        assert time.monotonic() - started < PUBLISH_WAIT_SECONDS  # refused at once
    assert set(asked) == {9}


def test_a_version_that_shows_in_geths_chain_while_watched_is_refused(
    store: LocalStore,
) -> None:
    """The interrupted version fired just before the interrupt; geth writes it to its
    chain 300 ms later (committing its state): the signer sees it and refuses."""
    now = [time.time()]
    written_at = [0.0]
    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, clock=lambda: now[0],
        published=lambda _height: time.monotonic() >= written_at[0],
    )  # fmt: skip
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    due = int(now[0]) + 1
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due))
    now[0] = due + 0.2
    written_at[0] = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(Refused, match="has a block at that height"):
        policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due, extra=b"v2".ljust(32, b"\0")))
    assert 0.25 <= time.monotonic() - started < PUBLISH_WAIT_SECONDS


def test_the_version_geth_just_interrupted_is_the_one_whose_time_counts(
    store: LocalStore,
) -> None:
    """v1 (stamped T) never went out; v2 came after T, stamped T + 1, and was signed. A
    v3 before v2's time needs no look at the chain: v2 was interrupted in time."""
    now = [time.time()]
    asked: list[float] = []

    def published(_height: int) -> bool:
        asked.append(now[0])
        return False

    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, clock=lambda: now[0],
        published=published,
    )  # fmt: skip
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    due = int(now[0]) + 1
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due))
    now[0] = due + 0.2
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due + 1, extra=b"v2".ljust(32, b"\0")))
    assert asked  # v2 came after v1's time: the chain was watched
    asked.clear()
    now[0] = due + 0.5  # before v2's time (due + 1) less the margin
    policy.sign_data(CLIQUE_HEADER, ADDRESS, header(9, at=due + 1, extra=b"v3".ljust(32, b"\0")))
    assert asked == []


def test_a_fence_refuses_at_once(policy: SigningPolicy, store: LocalStore) -> None:
    lease = keeper(store, "bank-a-1")
    policy.hold(KeyInMemory(KEY), lease)
    sign(policy, 3)
    policy.release()
    with pytest.raises(Refused):
        sign(policy, 3)
    assert policy.accounts() == [follower_address("bank-a-1")]


def test_a_lease_past_its_fence_time_is_not_proven(
    policy: SigningPolicy, store: LocalStore
) -> None:
    lease = keeper(store, "bank-a-1")
    policy.hold(KeyInMemory(KEY), lease)
    lease.renewed_at -= 15  # as after a pause longer than the lease
    with pytest.raises(Refused, match="cannot be proven"):
        sign(policy, 3)


@pytest.mark.parametrize("offset", [-60, -(10 + 1), PERIOD + 5, 3600])
def test_a_timestamp_that_is_not_sane_is_refused(
    policy: SigningPolicy, store: LocalStore, offset: int
) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    with pytest.raises(Refused, match="timestamp"):
        sign(policy, 3, at=time.time() + offset)
    blob = store.read(LEASE)
    assert blob is not None and json.loads(blob.data)["signed"] == -1  # nothing recorded


def test_a_key_that_does_not_answer_in_time_is_refused(store: LocalStore) -> None:
    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, sign_timeout=0.2
    )

    def slow(digest: bytes) -> bytes:
        time.sleep(1.0)
        return KeyInMemory(KEY).sign(digest)[:64]

    policy.hold(KeyInVault("k", ADDRESS, slow), keeper(store, "bank-a-1"))
    started = time.monotonic()
    with pytest.raises(Refused, match=r"did not sign within 0\.2s"):
        sign(policy, 3)
    assert time.monotonic() - started < 0.9


def test_calls_that_hang_in_the_vault_do_not_starve_the_next_header(store: LocalStore) -> None:
    """Two vault calls hang (a connection that never answers); the vault then answers
    again: the next header is signed at once, not queued behind the hung calls."""
    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, sign_timeout=0.3
    )
    vault_back = threading.Event()
    calls = []

    def vault(digest: bytes) -> bytes:
        calls.append(digest)
        if len(calls) <= 2:
            vault_back.wait(10)  # hangs until the test ends
        return KeyInMemory(KEY).sign(digest)[:64]

    policy.hold(KeyInVault("k", ADDRESS, vault), keeper(store, "bank-a-1"))
    try:
        for number in (3, 4):
            with pytest.raises(Refused, match=r"did not sign within 0\.3s"):
                sign(policy, number)
        started = time.monotonic()
        signature = sign(policy, 5)
        assert time.monotonic() - started < 0.3
        assert len(signature) == 65
    finally:
        vault_back.set()


def test_too_many_hung_vault_calls_refuse_at_once(store: LocalStore) -> None:
    policy = SigningPolicy(
        follower=follower_address("bank-a-1"), block_period=PERIOD, sign_timeout=0.05
    )
    vault_back = threading.Event()

    def hangs(digest: bytes) -> bytes:
        vault_back.wait(10)
        return KeyInMemory(KEY).sign(digest)[:64]

    policy.hold(KeyInVault("k", ADDRESS, hangs), keeper(store, "bank-a-1"))
    try:
        for number in range(3, 3 + MAX_HUNG_CALLS):
            with pytest.raises(Refused, match="did not sign within"):
                sign(policy, number)
        with pytest.raises(Refused, match=f"{MAX_HUNG_CALLS} signing calls to the vault still"):
            sign(policy, 3 + MAX_HUNG_CALLS)
    finally:
        vault_back.set()
    wait_for(lambda: policy._hung == 0, 5, "the hung calls to end")


def test_a_header_that_does_not_parse_is_refused(policy: SigningPolicy, store: LocalStore) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    with pytest.raises(Refused, match="not a Clique header"):
        policy.sign_data(CLIQUE_HEADER, ADDRESS, b"\x01\x02")


# -- the socket ------------------------------------------------------------------------------


@pytest.fixture
def served(policy: SigningPolicy, store: LocalStore) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="sig-", dir="/tmp"))
    path = directory / "signer.ipc"
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    with SignerServer(path, policy):
        yield path
    assert not path.exists()
    directory.rmdir()


def call(path: Path, payload: object) -> object:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.sendall(json.dumps(payload).encode())
        decoder, buffer = json.JSONDecoder(), ""
        while True:
            buffer += s.recv(65536).decode()
            try:
                return decoder.raw_decode(buffer)[0]
            except ValueError:
                continue


def rpc(method: str, *params: object, rid: int = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}


def test_the_socket_is_owner_only(served: Path) -> None:
    assert stat.S_IMODE(os.stat(served).st_mode) == 0o600


def test_geths_calls_are_answered(served: Path) -> None:
    assert call(served, rpc("account_version"))["result"]  # type: ignore[index]
    assert call(served, rpc("account_list"))["result"] == [  # type: ignore[index]
        follower_address("bank-a-1"),
        ADDRESS,
    ]
    data = header(4)
    answer = call(served, rpc("account_signData", CLIQUE_HEADER, ADDRESS, "0x" + data.hex()))
    signature = bytes.fromhex(answer["result"][2:])  # type: ignore[index]
    assert recovers_to(keccak(data), signature, ADDRESS)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (rpc("account_signData", "text/plain", ADDRESS, "0xdeadbeef"), -32000),
        (rpc("account_signTransaction", {"from": ADDRESS, "to": ADDRESS}), -32000),
        (rpc("account_signTypedData", ADDRESS, {}), -32601),
        (rpc("account_new"), -32601),
        (rpc("account_signData", CLIQUE_HEADER, ADDRESS), -32602),  # missing data
    ],
)
def test_everything_else_gets_a_json_rpc_error(
    served: Path, request_: dict[str, object], code: int
) -> None:
    answer = call(served, request_)
    assert answer["error"]["code"] == code  # type: ignore[index]
    assert "poactl signer" in answer["error"]["message"] or code == -32602  # type: ignore[index]


def test_a_batch_is_answered_item_by_item(served: Path) -> None:
    answer = call(
        served,
        [
            rpc("account_version", rid=1),
            rpc("account_signData", "text/plain", ADDRESS, "0x00", rid=2),
        ],
    )
    assert isinstance(answer, list)
    by_id = {item["id"]: item for item in answer}
    assert "result" in by_id[1] and "error" in by_id[2]


def test_a_vote_governance_has_not_decided_is_refused(
    policy: SigningPolicy, store: LocalStore
) -> None:
    policy.hold(KeyInMemory(KEY), keeper(store, "bank-a-1"))
    candidate = b"\xab" * 20
    with pytest.raises(Refused, match=r"a vote to add 0xabab.* that governance has not decided"):
        sign(policy, 5, coinbase=candidate, nonce=NONCE_AUTH)
    policy.allow_votes({"0x" + candidate.hex(): False})  # decided: drop it, not add it
    with pytest.raises(Refused, match="a vote to add"):
        sign(policy, 5, coinbase=candidate, nonce=NONCE_AUTH)
    policy.allow_votes({"0x" + candidate.hex().upper(): True})
    assert sign(policy, 5, coinbase=candidate, nonce=NONCE_AUTH)
    assert sign(policy, 6)  # a header with no vote is signed whatever the votes are
    policy.allow_votes({})
    with pytest.raises(Refused, match="a vote to add"):
        sign(policy, 7, coinbase=candidate, nonce=NONCE_AUTH)
