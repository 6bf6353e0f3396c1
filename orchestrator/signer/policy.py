"""What the signer signs: a strict policy, decided under one lock, one request at a time.

A request is signed only when all of these hold, in this order:

1. its content type is `application/x-clique-header` (never `text/plain` from
   `eth_sign`, typed data, or a transaction: those methods are refused outright);
2. its address is the identity whose lease this agent holds right now;
3. the data parses as a Clique header (`header`);
4. the lease is proven: held, and before the moment the agent fences;
5. its number is above the identity's high-water mark as this holder found it, so a
   new holder never signs a height an earlier holder may have signed;
6. its timestamp is sane: at most `MAX_PAST_SECONDS` old and at most one period (plus
   a second) ahead — geth stamps a header when it prepares it, so an old stamp means a
   geth that was frozen;
7. a vote it carries (coinbase and nonce) is one the agent asked geth to cast: one
   that carries out governance's decided validator set (`allow_votes`, from
   `orchestrator.agent.votes`); a header with no vote passes this check, and a geth that
   casts a vote nobody decided gets no signature for it;
8. the height is first recorded with the lease (`record_height`, a write that only
   the lease's holder can make: it proves the lease in the store, not only in this
   process's clock), then signed. geth asks again for the same height whenever it
   refreshes the block with new transactions (`--miner.recommit`): the same holder may
   re-sign its own latest height, never a lower one, and only when no other version of
   that block can be out. geth interrupts the version it is sealing *before* it asks
   for a new one (miner/worker.go `taskLoop` closes the version's stop channel), and
   Clique publishes a version no sooner than its timestamp (consensus/clique `Seal`
   waits on that channel or its timer; a select parked on both is decided by the
   close), so a version interrupted before its timestamp never goes out. A new version
   on the first one's parent is therefore signed when it comes before the timestamp of
   the latest version signed (the one geth just interrupted) less
   `RESIGN_MARGIN_SECONDS`. Later, that version may have fired before the interrupt:
   geth writes a block it sealed to its own chain before it sends it to anyone
   (`worker.resultLoop`), so the signer watches geth's chain (`published`) every
   `PUBLISH_POLL_SECONDS` for up to `PUBLISH_WAIT_SECONDS` and refuses as soon as a
   block shows at that height, or when geth cannot tell; it signs only if none appeared
   by then. The risk left: a version that fired just before the interrupt and whose
   write to geth's chain takes longer than `PUBLISH_WAIT_SECONDS` (geth commits the
   block's state first) would not be seen. The very same header as the latest may always
   be signed again.

The signature must come back within `SIGN_TIMEOUT_SECONDS` (geth waits for it with no
timeout of its own, so a slow vault would stall sealing), and the lease is checked once
more before it is returned. Each signing call runs on a thread of its own: a vault call
that hangs past the timeout keeps only its own thread, never one the next header needs,
so once the vault answers again the next header is signed; while `MAX_HUNG_CALLS` calls
still hang, a new one is refused at once rather than started. `release` (the agent's
fence) takes effect at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from eth_utils.address import to_checksum_address

from orchestrator.errors import PoaError, SignerError
from orchestrator.signer.header import CliqueHeader, NotACliqueHeader, parse_clique_header
from orchestrator.signer.keys import SigningFailed, ValidatorKey

log = logging.getLogger(__name__)

CLIQUE_HEADER = "application/x-clique-header"
MAX_PAST_SECONDS = 10
SIGN_TIMEOUT_SECONDS = 2.0
RESIGN_MARGIN_SECONDS = 0.1  # before the latest version's timestamp: geth's clock is ours
PUBLISH_WAIT_SECONDS = 1.0  # how long to watch geth's chain for a version that fired
PUBLISH_POLL_SECONDS = 0.05
MAX_HUNG_CALLS = 8  # signing calls still waiting for the vault past their timeout


class Refused(SignerError):
    """The signer's policy refuses this request; geth gets the message as an RPC error."""


class SigningLease(Protocol):
    """The identity's lease as the signer needs it (the agent's `LeaseKeeper`)."""

    def proven(self) -> bool:
        """Held, and before the moment the agent would fence."""

    @property
    def inherited_height(self) -> int:
        """The identity's high-water mark when this holder took the lease (-1: none)."""

    def record_height(self, height: int) -> bool:
        """Record `height` as signed, under the lease; False when the lease is lost."""


@dataclass
class _Held:
    key: ValidatorKey
    lease: SigningLease
    signed: int  # the highest height this holder signed (starts at the inherited mark)
    first: CliqueHeader | None = None  # the first header this holder signed at `signed`
    latest: CliqueHeader | None = None  # ... and the latest one (geth interrupts it to ask)


class SigningPolicy:
    def __init__(
        self,
        *,
        follower: str,
        block_period: int,
        clock: Callable[[], float] = time.time,
        sign_timeout: float = SIGN_TIMEOUT_SECONDS,
        observe: Callable[[str, float], None] = lambda _result, _seconds: None,
        published: Callable[[int], bool | None] = lambda _height: None,
    ) -> None:
        """`observe(result, seconds)` hears of every answer: "signed" or "refused";
        `published(height)` says whether geth's chain holds a block at `height` (None:
        it cannot tell)."""
        self.follower = to_checksum_address(follower)
        self.block_period = block_period
        self._clock = clock
        self._sign_timeout = sign_timeout
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._hung = 0  # signing calls still running past their timeout
        self._hung_lock = threading.Lock()
        self._observe = observe
        self._published = published
        self._votes: dict[str, bool] = {}  # address (lower case) -> add; see allow_votes

    # -- what the agent does ------------------------------------------------------------
    def hold(self, key: ValidatorKey, lease: SigningLease) -> None:
        """Sign as `key`'s identity from now on, for as long as `lease` is proven."""
        with self._lock:
            self._held = _Held(key, lease, lease.inherited_height)

    def release(self) -> None:
        """Refuse every request from now on (the agent fenced or stopped)."""
        self._held = None  # no lock: a signature in flight is checked again before it leaves

    def allow_votes(self, votes: Mapping[str, bool]) -> None:
        """The Clique votes a header may carry from now on: address -> add (True) or drop."""
        self._votes = {a.lower(): bool(add) for a, add in votes.items()}  # one atomic swap

    @property
    def identity(self) -> str | None:
        held = self._held
        return held.key.address if held else None

    def accounts(self) -> list[str]:
        """What geth may seal as: the follower (never signed for) and the held identity."""
        held = self._held
        identity = [to_checksum_address(held.key.address)] if held else []
        return [self.follower, *identity]

    # -- what geth asks -----------------------------------------------------------------
    def sign_data(self, content_type: str, address: str, data: bytes) -> bytes:
        started = time.monotonic()
        with self._lock:
            signature = self._decide_and_sign(content_type, address, data)
        self._observe("signed", time.monotonic() - started)
        return signature

    def refused(self, why: Refused, seconds: float = 0.0) -> None:
        """Log and count a refusal (the server reports each one here)."""
        log.warning("signer refused: %s", why.what)
        self._observe("refused", seconds)

    def _decide_and_sign(self, content_type: str, address: str, data: bytes) -> bytes:
        if content_type != CLIQUE_HEADER:
            raise Refused(f"signs Clique headers only; {content_type!r} is refused")
        held = self._held
        if held is None or address.lower() != held.key.address.lower():
            raise Refused(f"{address} is not the identity this agent holds a lease for")
        try:
            header = parse_clique_header(data)
        except NotACliqueHeader as e:
            raise Refused(f"not a Clique header: {e.what}") from e
        if not held.lease.proven():
            raise Refused("the identity's lease cannot be proven (lost or about to expire)")
        inherited = held.lease.inherited_height
        if header.number <= inherited:
            raise Refused(
                f"height {header.number}: this identity already signed up to {inherited} "
                "under an earlier holder"
            )
        now = self._clock()
        if not now - MAX_PAST_SECONDS <= header.time <= now + self.block_period + 1:
            raise Refused(
                f"height {header.number}: timestamp {header.time} is not sane at {now:.0f}"
            )
        vote = header.vote
        if vote is not None and self._votes.get(vote[0].lower()) is not vote[1]:
            what = "add" if vote[1] else "drop"
            raise Refused(
                f"height {header.number}: a vote to {what} {vote[0]} that governance has "
                "not decided"
            )
        if header.number < held.signed:
            raise Refused(f"height {header.number} is below {held.signed}, already signed")
        if header.number == held.signed:
            self._check_resign(header, held, now, self._published)
        if not held.lease.record_height(header.number):  # proves the lease in the store
            raise Refused(f"height {header.number}: the lease was lost; not recorded")
        if header.number > held.signed or held.first is None:
            held.first = header
        held.latest = header
        held.signed = header.number
        signature = self._sign_in_time(held.key, header.seal_hash, header.number)
        if self._held is not held or not held.lease.proven():
            raise Refused(f"height {header.number}: fenced while signing")
        return signature

    @staticmethod
    def _check_resign(
        header: CliqueHeader,
        held: _Held,
        now: float,
        published: Callable[[int], bool | None],
    ) -> None:
        """Another version of the height this holder signed last: see rule 8."""
        first, latest = held.first, held.latest
        if first is None or latest is None or header.seal_hash == latest.seal_hash:
            return  # nothing signed at this height yet by this holder, or the same header
        if header.parent != first.parent:
            raise Refused(
                f"height {header.number}: already signed on another parent; a second block "
                "at one height is never signed"
            )
        if now < latest.time - RESIGN_MARGIN_SECONDS:
            return  # the version geth just interrupted cannot have gone out
        deadline = time.monotonic() + PUBLISH_WAIT_SECONDS
        while (seen := published(header.number)) is False:
            if time.monotonic() >= deadline:
                return  # none showed: the interrupted version never went out
            time.sleep(PUBLISH_POLL_SECONDS)
        raise Refused(
            f"height {header.number}: a version stamped {latest.time} was signed, its time "
            f"has come ({now:.1f}) and geth's chain "
            + ("has a block at that height" if seen else "cannot be asked")
            + "; no second block at one height"
        )

    def _sign_in_time(self, key: ValidatorKey, digest: bytes, number: int) -> bytes:
        with self._hung_lock:
            if self._hung >= MAX_HUNG_CALLS:
                raise Refused(
                    f"height {number}: {self._hung} signing calls to the vault still hang; "
                    "no new one until they end"
                )
        call = _Call(key, digest, self._hung_lock, self._hung_ended)
        threading.Thread(target=call.run, name=f"sign-{number}", daemon=True).start()
        if not call.done.wait(self._sign_timeout):
            with self._hung_lock:
                if not call.done.is_set():  # still running: count it until it ends
                    call.hung = True
                    self._hung += 1
                    raise Refused(
                        f"height {number}: the key did not sign within {self._sign_timeout:.1f}s"
                    )
        if isinstance(call.error, SigningFailed):
            raise Refused(f"height {number}: {call.error.what}") from call.error
        if isinstance(call.error, PoaError):  # the vault could not be asked
            raise Refused(f"height {number}: the vault did not sign: {call.error.what}") from (
                call.error
            )
        if call.error is not None:
            raise call.error
        assert call.signature is not None
        return call.signature

    def _hung_ended(self) -> None:
        with self._hung_lock:
            self._hung -= 1


@dataclass
class _Call:
    """One signing call on a thread of its own; `ended` is told when a call that hung
    past its timeout finally ends (`lock` orders "done" against "hung")."""

    key: ValidatorKey
    digest: bytes
    lock: threading.Lock
    ended: Callable[[], None]
    done: threading.Event = field(default_factory=threading.Event)
    signature: bytes | None = None
    error: BaseException | None = None
    hung: bool = False

    def run(self) -> None:
        try:
            self.signature = self.key.sign(self.digest)
        except BaseException as e:  # handed to the waiting caller
            self.error = e
        finally:
            with self.lock:
                self.done.set()
                hung = self.hung
            if hung:
                self.ended()
