"""The Clique header geth asks the signer to sign, read from its RLP.

geth sends `CliqueRLP(header)`: the header's fields in order with the 65-byte seal cut
from `extra` (consensus/clique `encodeSigHeader`): parentHash, uncleHash, coinbase,
root, txHash, receiptHash, bloom, difficulty, number, gasLimit, gasUsed, time, extra,
mixDigest, nonce, and baseFee from London on. What is signed is keccak256 of those
bytes, which is Clique's seal hash. Anything else does not parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp  # type: ignore[import-untyped]
from eth_utils.crypto import keccak

from orchestrator.errors import SignerError

PRE_LONDON_FIELDS = 15
LONDON_FIELDS = 16  # + baseFee; Clique in geth 1.13 refuses Shanghai's extra fields
VANITY_BYTES = 32
NONCE_AUTH = b"\xff" * 8  # a vote to add `coinbase` as a signer
NONCE_DROP = b"\x00" * 8  # a vote to drop it (or no vote, with a zero coinbase)


class NotACliqueHeader(SignerError):
    """The data geth sent for `application/x-clique-header` is not a Clique header."""


@dataclass(frozen=True)
class CliqueHeader:
    number: int
    time: int
    parent: bytes  # the parent block's hash
    coinbase: bytes  # the address voted on (20 zero bytes: no vote)
    nonce: bytes  # NONCE_AUTH or NONCE_DROP
    seal_hash: bytes  # keccak256 of the signing data: what the signature covers

    @property
    def vote(self) -> tuple[str, bool] | None:
        """(address voted on, add?) when the header carries a Clique vote."""
        if self.coinbase == bytes(20):
            return None
        return "0x" + self.coinbase.hex(), self.nonce == NONCE_AUTH


def _int(field: bytes, name: str) -> int:
    if not isinstance(field, bytes) or len(field) > 32 or field[:1] == b"\x00":
        raise NotACliqueHeader(f"field {name} is not a canonical integer")
    return int.from_bytes(field, "big")


def parse_clique_header(data: bytes) -> CliqueHeader:
    """The header in `data` (CliqueRLP); NotACliqueHeader when it is not one."""
    try:
        fields = rlp.decode(data)
    except (rlp.exceptions.DecodingError, rlp.exceptions.DeserializationError) as e:
        raise NotACliqueHeader(f"not RLP: {e}") from e
    if not isinstance(fields, list) or len(fields) not in (PRE_LONDON_FIELDS, LONDON_FIELDS):
        count = len(fields) if isinstance(fields, list) else "no"
        raise NotACliqueHeader(f"a Clique header has 15 or 16 fields, this has {count}")
    if any(not isinstance(f, bytes) for f in fields):
        raise NotACliqueHeader("a header's fields are byte strings, not lists")
    sizes = {0: 32, 1: 32, 2: 20, 3: 32, 4: 32, 5: 32, 6: 256, 13: 32, 14: 8}
    for index, size in sizes.items():
        if len(fields[index]) != size:
            raise NotACliqueHeader(f"field {index} has {len(fields[index])} bytes, not {size}")
    if len(fields[12]) < VANITY_BYTES:
        raise NotACliqueHeader("extra is shorter than Clique's 32-byte vanity")
    if fields[14] not in (NONCE_AUTH, NONCE_DROP):
        raise NotACliqueHeader("the nonce is neither a Clique add nor a drop vote")
    return CliqueHeader(
        number=_int(fields[8], "number"),
        time=_int(fields[11], "time"),
        parent=fields[0],
        coinbase=fields[2],
        nonce=fields[14],
        seal_hash=keccak(data),
    )
