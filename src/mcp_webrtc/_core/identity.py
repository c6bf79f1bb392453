"""Peer identity: Ed25519 keys that sign the DTLS fingerprints of a description
(docs/protocol.md, §8). Pure: keys in, lines and verdicts out; files live in
:mod:`mcp_webrtc.identity`.

DTLS already proves that the far end holds the certificate whose fingerprint the
description named; what it cannot prove is that the description came from the peer the
user meant, since any rendezvous relays descriptions. A side with an identity key signs
its description's fingerprints, and the receiver checks the signature against the key it
expects before it gives the description to its engine, so DTLS then completes only with
the holder of that key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import ConfigurationError, PeerIdentityError
from .sdp import CAPABILITY_ATTRIBUTE

#: The key type that starts a public key line.
KEY_TYPE = "mcp-webrtc-ed25519"
#: The first line of every signed message (domain separation).
CONTEXT = "mcp-webrtc-identity-v1"
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_FINGERPRINT = re.compile(r"a=fingerprint:\s*(\S+)\s+([0-9A-Fa-f:]+)\s*$")

Kind = Literal["offer", "answer"]


def _b64decode(text: str, size: int, what: str) -> bytes:
    if not _B64.fullmatch(text):
        raise ValueError(f"{what} is not base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not base64") from exc
    if len(raw) != size:
        raise ValueError(f"{what} has {len(raw)} bytes, not {size}")
    return raw


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key, as one line: ``mcp-webrtc-ed25519 <base64> [comment]``."""

    raw: bytes
    comment: str = field(default="", compare=False)

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """Read a public key line; :class:`ConfigurationError` says what is wrong."""
        parts = line.strip().split(None, 2)
        if len(parts) < 2 or parts[0] != KEY_TYPE:
            raise ConfigurationError(f"not a {KEY_TYPE} public key line: {line.strip()[:60]!r}")
        try:
            raw = _b64decode(parts[1], 32, "the key")
        except ValueError as exc:
            shown = line.strip()[:60]
            raise ConfigurationError(f"bad public key line ({exc}): {shown!r}") from None
        return cls(raw, parts[2] if len(parts) > 2 else "")

    @property
    def base64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @property
    def line(self) -> str:
        return f"{KEY_TYPE} {self.base64}" + (f" {self.comment}" if self.comment else "")

    @property
    def fingerprint(self) -> str:
        """``SHA256:`` and the unpadded base64 of the key's SHA-256, as OpenSSH shows keys."""
        digest = base64.b64encode(hashlib.sha256(self.raw).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Identity:
    """This side's Ed25519 private key."""

    def __init__(self, private: Ed25519PrivateKey, comment: str = "") -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(raw, comment)

    @classmethod
    def generate(cls, comment: str = "") -> Identity:
        return cls(Ed25519PrivateKey.generate(), comment)

    @classmethod
    def from_pem(cls, data: bytes, comment: str = "") -> Identity:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError("the identity key is not an Ed25519 key")
        return cls(key, comment)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the private key
        return f"Identity({self.public.fingerprint})"


def fingerprints(sdp: str) -> list[str]:
    """The description's DTLS fingerprints, ``"sha-256 AB:CD:..."``: sorted, unique, the
    algorithm in lower case and the value in upper case (session and media level alike)."""
    found = set()
    for line in sdp.splitlines():
        match = _FINGERPRINT.match(line.strip())
        if match:
            found.add(f"{match.group(1).lower()} {match.group(2).upper()}")
    return sorted(found)


def signed_message(
    kind: Kind, capability: str, own: list[str], offer: list[str], key: PublicKey
) -> bytes:
    """What a side signs (§8): the context, the description's type, its capability fields
    before the identity, its fingerprints, for an answer the offer's fingerprints, the key."""
    lines = [CONTEXT, kind, capability, ",".join(own), ",".join(offer), key.base64]
    return "\n".join(lines).encode()


def _capability(sdp: str) -> tuple[int, str] | None:
    """Index and value of the capability line in ``sdp.splitlines()``."""
    prefix = f"a={CAPABILITY_ATTRIBUTE}:"
    for index, line in enumerate(sdp.splitlines()):
        if line.strip().startswith(prefix):
            return index, line.strip()[len(prefix) :]
    return None


def _offered(kind: Kind, offer: str | None) -> list[str]:
    """The fingerprints an answer is bound to: its offer's (none for an offer)."""
    return fingerprints(offer) if kind == "answer" and offer is not None else []


def sign_description(identity: Identity, kind: Kind, sdp: str, offer: str | None) -> str:
    """``sdp`` (which carries our capability line) with ``identity=`` and ``signature=``
    fields added to that line. ``offer``: for an answer, the offer's SDP."""
    found = _capability(sdp)
    if found is None:
        raise ValueError("the description has no capability line to sign")
    index, fields = found
    own = fingerprints(sdp)
    if not own:
        raise ValueError("the description has no DTLS fingerprint to sign")
    message = signed_message(kind, fields, own, _offered(kind, offer), identity.public)
    signature = base64.b64encode(identity.sign(message)).decode()
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    lines[index] = f"{lines[index]};identity={identity.public.base64};signature={signature}"
    return eol.join(lines)


def verify_description(kind: Kind, sdp: str, offer: str | None) -> PublicKey | None:
    """The key that signed ``sdp``, or ``None`` when it carries no identity (a plain peer,
    or one without a key). :class:`PeerIdentityError` when it carries one that does not
    verify: a forged, altered or malformed signature."""
    found = _capability(sdp)
    if found is None:
        return None
    fields = found[1].split(";")
    values = dict(item.partition("=")[::2] for item in fields[1:])
    if "identity" not in values:
        return None
    signed_fields = ";".join(f for f in fields if not f.startswith(("identity=", "signature=")))
    try:
        key = PublicKey(_b64decode(values["identity"], 32, "identity"))
        signature = _b64decode(values.get("signature", ""), 64, "signature")
    except ValueError as exc:
        raise PeerIdentityError(f"the peer's identity is malformed ({exc})") from None
    own = fingerprints(sdp)
    message = signed_message(kind, signed_fields, own, _offered(kind, offer), key)
    if not own or not key.verify(signature, message):
        raise PeerIdentityError(
            f"the peer's {kind} is signed by {key.fingerprint} but the signature does not "
            "match its DTLS fingerprints: it was altered or forged on the way"
        )
    return key


def check_expected(key: PublicKey | None, expected: tuple[PublicKey, ...]) -> None:
    """Raise :class:`PeerIdentityError` unless ``key`` is one of ``expected`` (when any)."""
    if not expected:
        return
    wanted = ", ".join(k.fingerprint for k in expected)
    if key is None:
        raise PeerIdentityError(f"the peer proved no identity; expected key {wanted}")
    if key not in expected:
        raise PeerIdentityError(
            f"the peer's key is {key.fingerprint}, not the expected {wanted} "
            "(another peer, or a man in the middle)"
        )
