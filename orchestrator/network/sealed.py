"""A vault secret handed to another bank through published data, encrypted to that
bank's governance admin key: only the holder of the admin key (in the recipient's vault)
can open it, and the sender checks that the key is the one the members admitted.

ECIES on secp256k1 with `cryptography`: an ephemeral key pair, ECDH with the recipient's
public key, HKDF-SHA256 to a 256-bit key, AES-256-GCM. The associated data binds the
envelope to its secret's name, its sender and its recipient's address, so an envelope
cannot be replayed under another name or to another bank.

    keys/<member>/admin.json          {"member", "admin", "public_key"} (the member's)
    keys/<member>/<name>.commitment.json  {"member", "name", "commitment"} (the member's)
    sealed/<sender>/<recipient>.json  {"name", "sender", "recipient", "ephemeral",
                                       "nonce", "ciphertext"} (the sender's)

A recipient does not take the first envelope that opens: a faulty member could hand it
a wrong secret. Every member that holds a shared secret publishes a *commitment* to it
(SHA-256 of a domain tag, the secret's name and its value: nothing of a random 256-bit
secret can be learnt from it), and a secret is taken only when it matches the
commitment that more than half of the other members publish (`agreed_commitment`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from orchestrator.boundaries import ConsortiumData, Secret, Store
from orchestrator.errors import StateError
from orchestrator.geth.keys import address_of_public_key

HKDF_INFO = b"poactl sealed secret v1"
COMMITMENT_TAG = b"poactl secret commitment v1"


def admin_key_blob(member: str) -> str:
    return f"keys/{member}/admin.json"


def sealed_blob(sender: str, recipient: str) -> str:
    return f"sealed/{sender}/{recipient}.json"


def commitment_blob(member: str, name: str) -> str:
    return f"keys/{member}/{name}.commitment.json"


def secret_commitment(name: str, secret: Secret) -> str:
    digest = hashlib.sha256(b"\0".join([COMMITMENT_TAG, name.encode(), secret.value.encode()]))
    return "0x" + digest.hexdigest()


def publish_commitment(store: Store, member: str, name: str, secret: Secret) -> None:
    """Publish `member`'s commitment to its vault's secret `name` (written once)."""
    body = {"member": member, "name": name, "commitment": secret_commitment(name, secret)}
    data = json.dumps(body, sort_keys=True).encode()
    current = store.read(commitment_blob(member, name))
    if current is None or current.data != data:
        store.write(commitment_blob(member, name), data)


def read_commitment(data: ConsortiumData, member: str, name: str) -> str | None:
    """`member`'s published commitment to secret `name` (None: none, or not well-formed)."""
    blob = data.read(commitment_blob(member, name))
    try:
        doc = json.loads(blob.data) if blob else None
        if not isinstance(doc, dict) or doc.get("member") != member or doc.get("name") != name:
            return None
        return str(doc["commitment"])
    except (ValueError, KeyError, TypeError):
        return None


def agreed_commitment(
    data: ConsortiumData, members: Collection[str], name: str
) -> tuple[str | None, str]:
    """The commitment to secret `name` that more than half of `members` publish (None
    when none has that many yet), and a line saying how far agreement is."""
    published = {m: c for m in sorted(members) if (c := read_commitment(data, m, name))}
    needed = len(members) // 2 + 1
    counts: dict[str, int] = {}
    for c in published.values():
        counts[c] = counts.get(c, 0) + 1
    best = max(counts.items(), key=lambda kv: kv[1], default=(None, 0))
    line = (
        f"{best[1]} of the {len(members)} other members publish the same commitment to "
        f"{name} ({needed} needed; {len(published)} publish one)"
    )
    return (best[0] if best[1] >= needed else None), line


def _private(key: Secret) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(key.value.removeprefix("0x"), 16), ec.SECP256K1())


def public_key_hex(key: Secret) -> str:
    """The uncompressed public key (0x04...) of a hex private key."""
    raw = _private(key).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return "0x" + raw.hex()


def address_of(public_key: str) -> str:
    raw = bytes.fromhex(public_key.removeprefix("0x"))
    return address_of_public_key(raw[1:] if len(raw) == 65 else raw)


def publish_admin_key(store: Store, member: str, admin_key: Secret) -> None:
    """Publish the member's admin public key (so other banks can seal secrets to it)."""
    public = public_key_hex(admin_key)
    body = {"member": member, "admin": address_of(public), "public_key": public}
    store.write(admin_key_blob(member), json.dumps(body, sort_keys=True).encode())


def read_admin_key(data: ConsortiumData, member: str, *, admin: str) -> str:
    """`member`'s published admin public key, checked against its admitted `admin`."""
    blob = data.read(admin_key_blob(member))
    try:
        public = str(json.loads(blob.data)["public_key"]) if blob else None
        matches = public is not None and address_of(public) == admin
    except (ValueError, KeyError, TypeError):
        public, matches = None, False
    if public is None or not matches:
        raise StateError(
            f"{member} publishes no admin public key for its admitted admin {admin}",
            obj=admin_key_blob(member),
            hint=f"{member}'s agents publish it when they start; a key that does not "
            "derive the admitted admin address is refused",
        )
    return public


def _aad(name: str, sender: str, recipient: str) -> bytes:
    return json.dumps([name, sender, recipient]).encode()


def _key(private: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey) -> bytes:
    shared = private.exchange(ec.ECDH(), public)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(shared)


def seal(secret: Secret, *, name: str, sender: str, recipient: str, public_key: str) -> bytes:
    """An envelope holding `secret` that only `public_key`'s holder can open."""
    point = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256K1(), bytes.fromhex(public_key.removeprefix("0x"))
    )
    ephemeral = ec.generate_private_key(ec.SECP256K1())
    nonce = os.urandom(12)
    ciphertext = AESGCM(_key(ephemeral, point)).encrypt(
        nonce, secret.value.encode(), _aad(name, sender, recipient)
    )
    eph = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    body = {
        "name": name, "sender": sender, "recipient": recipient, "ephemeral": "0x" + eph.hex(),
        "nonce": "0x" + nonce.hex(), "ciphertext": "0x" + ciphertext.hex(),
    }  # fmt: skip
    return json.dumps(body, sort_keys=True).encode()


def share_sealed(
    store: Store, secret: Secret, *, name: str, sender: str, recipient: str, public_key: str
) -> str:
    """Seal `secret` to `recipient`'s admin `public_key` and publish it in `sender`'s
    `store`, beside `sender`'s commitment to it (the recipient takes the secret only when
    most members commit to it: a sender that shares must also commit); the blob's name."""
    blob = sealed_blob(sender, recipient)
    envelope = seal(secret, name=name, sender=sender, recipient=recipient, public_key=public_key)
    publish_commitment(store, sender, name, secret)
    store.write(blob, envelope)
    return blob


def open_sealed(
    envelope: bytes, *, name: str, recipient: str, admin_key: Secret, sender: str | None = None
) -> Secret:
    """The secret in `envelope`, for `recipient` holding `admin_key` (from `sender`, when
    given: the member whose publication held it); StateError if the envelope is not for
    it, was altered, or was sealed to another key."""
    try:
        doc: dict[str, Any] = json.loads(envelope)
        if doc["name"] != name or doc["recipient"] != recipient:
            raise ValueError("another name or recipient")
        if sender is not None and doc["sender"] != sender:
            raise ValueError(f"it names sender {str(doc['sender'])[:40]!r}, not {sender}")
        point = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256K1(), bytes.fromhex(doc["ephemeral"][2:])
        )
        plain = AESGCM(_key(_private(admin_key), point)).decrypt(
            bytes.fromhex(doc["nonce"][2:]), bytes.fromhex(doc["ciphertext"][2:]),
            _aad(name, str(doc["sender"]), recipient),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, InvalidTag) as e:
        raise StateError(
            f"a sealed {name} for {recipient} does not open ({type(e).__name__}"
            + (f": {e})" if isinstance(e, ValueError) and str(e) else ")"),
            obj=name,
            hint="ask the sending member to seal it again to your published admin key",
        ) from e
    return Secret(plain.decode())
