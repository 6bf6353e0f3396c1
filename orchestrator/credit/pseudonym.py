"""Subjects on chain are keyed pseudonyms, computed on the bank's side.

    subject = HMAC-SHA256(key = the consortium secret as UTF-8, msg = normalized national ID)

Normalization makes every bank derive the same subject from the same person, however
the ID was typed: Unicode NFKC (full-width digits become ASCII), then every space and
dash removed (ASCII and Unicode whitespace, hyphen-minus and Unicode dash punctuation),
then upper-cased. What remains must be 4 to 32 ASCII letters or digits. The national ID,
names and dates of birth never leave the client; without the secret a pseudonym cannot
be tested against a guessed ID, which is why the secret lives in each bank's vault.

The banks agree the secret out of band and each keeps it in its own vault under
`PSEUDONYM_SECRET_NAME`; `share_secret` plays that part where one operator reaches every
bank's vault (a local consortium: `poactl up`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping

from orchestrator.boundaries import Secret, Vault
from orchestrator.credit.errors import InvalidRecord
from orchestrator.errors import ConfigError, StateError
from orchestrator.network.names import PSEUDONYM_SECRET_NAME

SUBJECT_BYTES = 32
MIN_SECRET_CHARS = 32  # e.g. secrets.token_hex(32) gives 64
NATIONAL_ID = re.compile(r"^[A-Z0-9]{4,32}$")
NATIONAL_ID_ALLOWED = "4 to 32 letters or digits once spaces and dashes are removed"


def masked(raw: str) -> str:
    """Enough to recognise a typo, not enough to leak an identifier (a national ID, an
    account number) into a log or a terminal."""
    return f"<{len(raw)} characters ending {raw[-2:]}>" if len(raw) > 6 else "<short value>"


def normalize_national_id(national_id: str) -> str:
    """The canonical form hashed into the pseudonym; InvalidRecord if it is malformed."""
    if not isinstance(national_id, str):
        raise InvalidRecord("national_id", type(national_id).__name__, "a string")
    text = unicodedata.normalize("NFKC", national_id)
    kept = [c for c in text if not (c.isspace() or c == "-" or unicodedata.category(c) == "Pd")]
    normalized = "".join(kept).upper()
    if not NATIONAL_ID.match(normalized):
        bad = sorted({c for c in normalized if not ("A" <= c <= "Z" or "0" <= c <= "9")})
        detail = f" (contains {''.join(bad)!r})" if bad else f" ({len(normalized)} characters)"
        raise InvalidRecord("national_id", masked(national_id) + detail, NATIONAL_ID_ALLOWED)
    return normalized


def check_secret(secret: Secret) -> bytes:
    """The HMAC key from the consortium secret; ConfigError if it is missing or too short."""
    if not isinstance(secret, Secret) or len(secret.value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"the pseudonym secret is missing or shorter than {MIN_SECRET_CHARS} characters",
            obj="pseudonym secret",
            hint="every bank must hold the same consortium secret in its vault; "
            "create it once with `python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return secret.value.encode()


def pseudonym(secret: Secret, national_id: str) -> bytes:
    """The 32-byte subject for `national_id` under the consortium `secret`."""
    key = check_secret(secret)
    message = normalize_national_id(national_id).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).digest()


def check_subject(subject: object) -> bytes:
    """A subject as 32 bytes: bytes of length 32, or a 0x-prefixed 64-digit hex string.

    A national ID is refused here on purpose: it must go through `pseudonym` first.
    """
    allowed = "a 32-byte pseudonym (bytes, or 0x + 64 hex digits); use pseudonym(secret, id)"
    if isinstance(subject, bytes | bytearray) and len(subject) == SUBJECT_BYTES:
        raw = bytes(subject)
    elif isinstance(subject, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", subject):
        raw = bytes.fromhex(subject[2:])
    else:
        shown = (
            f"<{len(subject)} bytes>" if isinstance(subject, bytes | bytearray) else _shown(subject)
        )
        raise InvalidRecord("subject", shown, allowed)
    if raw == bytes(SUBJECT_BYTES):
        raise InvalidRecord("subject", "0x" + raw.hex(), "a non-zero pseudonym")
    return raw


def _shown(value: object) -> str:
    return masked(value) if isinstance(value, str) else type(value).__name__


def share_secret(vaults: Mapping[str, Vault], name: str = PSEUDONYM_SECRET_NAME) -> bool:
    """Make every vault hold the same consortium secret under `name`; True if one was made.

    Idempotent and convergent: a secret some vaults already hold (an earlier, interrupted
    call) is copied to the others; only when none holds one is a new one generated.
    Vaults that hold different secrets are refused (StateError): their banks would derive
    different subjects for the same person.
    """
    held = {member: vault.get_secret(name) for member, vault in vaults.items()}
    values = {s.value for s in held.values() if s is not None}
    if len(values) > 1:
        raise StateError(
            "the banks' vaults hold different consortium pseudonym secrets: their subjects "
            "for the same person would differ",
            obj=name,
            hint="agree one secret and store it in every bank's vault "
            f"({', '.join(sorted(held))}); existing tradelines stay under their old subjects",
        )
    created = not values
    secret = Secret(secrets.token_hex(32)) if created else Secret(next(iter(values)))
    check_secret(secret)
    for member, vault in vaults.items():
        if held[member] is None:
            vault.set_secret(name, secret)
    return created and bool(vaults)
