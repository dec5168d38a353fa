"""A terminal's copy of the offline bundle: verify it, apply it, look things up in it.

Written from docs/protocol.md ("Offline terminals") alone, as a vendor would port it:
it imports nothing of `validator`. A bundle is gzip(COSE_Sign1(CBOR map)); the terminal
accepts it only if the signature verifies under a published bundle key and its sequence
number is newer than the one it holds (a delta: its `base` is exactly that one); an empty
delta whose `base` and `seq` both equal the held one says "up to date" and changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hmac
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["BundleRefused", "OfflineBundle", "load_bundle_keys", "open_bundle"]

INFO = b"ssc-offline-bundle-v1"
SECTIONS = ("blocked_cards", "blocked_holders", "eligibility")
CODES = {1: "veteran", 2: "disabled"}
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # decompressed: a bomb is refused, not unpacked


class BundleRefused(ValueError):
    """The terminal keeps the bundle it has; `reason` says why this one was refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_bundle_keys(keys_dir: Path) -> dict[bytes, Ed25519PublicKey]:
    """kid → key, from the published `bundle-public.json` ({"keys": [JWK, ...]})."""
    doc = json.loads((keys_dir / "bundle-public.json").read_text("utf-8"))
    keys = {}
    for jwk in doc["keys"]:
        def b64(name: str, jwk: dict[str, str] = jwk) -> bytes:
            text = jwk[name]
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        keys[b64("kid")] = Ed25519PublicKey.from_public_bytes(b64("x"))
    return keys


def open_bundle(body: bytes, keys: dict[bytes, Ed25519PublicKey]) -> dict[str, Any]:
    """The verified payload of a bundle as received; BundleRefused otherwise."""
    try:
        unpacker = zlib.decompressobj(wbits=31)  # gzip
        signed = unpacker.decompress(body, MAX_BUNDLE_BYTES)
        if unpacker.unconsumed_tail:
            raise BundleRefused("too_large")
        item = cbor2.loads(signed)
        if isinstance(item, cbor2.CBORTag):
            if item.tag != 18:
                raise BundleRefused("malformed")
            item = item.value
        protected_raw, _unprotected, payload_raw, signature = item
        protected = cbor2.loads(protected_raw)
    except BundleRefused:
        raise
    except Exception:  # a foreign decoder: anything it raises means "not a bundle"
        raise BundleRefused("malformed") from None
    if protected.get(1) != -8:
        raise BundleRefused("malformed")
    key = keys.get(protected.get(4, b""))
    if key is None:
        raise BundleRefused("unknown_key")
    to_sign = cbor2.dumps(["Signature1", protected_raw, b"", payload_raw])
    try:
        key.verify(signature, to_sign)
    except InvalidSignature:
        raise BundleRefused("bad_signature") from None
    payload = cbor2.loads(payload_raw)
    if payload.get("v") != 1:
        raise BundleRefused("unsupported_version")
    return dict(payload)


def _date(yyyymmdd: int) -> dt.date | None:
    return None if not yyyymmdd else dt.date(yyyymmdd // 10000, yyyymmdd // 100 % 100,
                                             yyyymmdd % 100)


@dataclass
class OfflineBundle:
    """The bundle a terminal holds: the latest fixed part and the lists, by index."""

    seq: int = 0
    exp: int = 0
    salt: bytes = b""
    fixed: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, dict[bytes, Any]] = field(
        default_factory=lambda: {section: {} for section in SECTIONS})

    @property
    def loaded(self) -> bool:
        return self.seq > 0

    def apply(self, payload: dict[str, Any]) -> None:
        """Take a verified full bundle or delta; BundleRefused if it is not newer, or a
        delta not made for the bundle held. An up-to-date delta (`base` = `seq` = the
        held seq) changes nothing and is not a refusal."""
        seq, base = payload["seq"], payload.get("base")
        if base is not None and base == seq == self.seq and payload["salt"] == self.salt:
            # "Nothing new since the one you hold": an answer to `since` = our own seq.
            if any(payload[section] for section in SECTIONS) or \
                    any(payload.get("removed", {}).values()):
                raise BundleRefused("malformed")
            return
        if seq <= self.seq:
            raise BundleRefused("older_sequence")
        if base is not None and (base != self.seq or payload["salt"] != self.salt):
            raise BundleRefused("delta_base_mismatch")
        if base is None:
            self.lists = {section: {} for section in SECTIONS}
        for section in SECTIONS:
            table = self.lists[section]
            for index in payload.get("removed", {}).get(section, ()):
                table.pop(index, None)
            for index, value in payload[section]:
                table[index] = value
        self.seq, self.exp, self.salt = seq, payload["exp"], payload["salt"]
        self.fixed = {k: v for k, v in payload.items() if k not in SECTIONS}

    def usable_at(self, now: int) -> bool:
        """Offline acceptance stops at the bundle's not-after."""
        return self.loaded and now <= self.exp

    # --- look-ups ----------------------------------------------------------------------

    def _okm(self, holder_ref: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 48, self.salt, INFO).derive(holder_ref)

    def categories(self, holder_ref: bytes) -> list[dict[str, Any]]:
        """The holder's registry categories, opened with keys from its ref."""
        okm = self._okm(holder_ref)
        sealed = self.lists["eligibility"].get(okm[:8])
        if sealed is None:
            return []
        rows = cbor2.loads(AESGCMSIV(okm[8:40]).decrypt(bytes(12), sealed, okm[:8]))
        return [{"code": CODES[code], "grade": grade or None, "until": _date(until)}
                for code, grade, until in rows]

    def holder_block_until(self, holder_ref: bytes) -> tuple[bool, dt.date | None]:
        index = self._okm(holder_ref)[40:48]
        table = self.lists["blocked_holders"]
        return (index in table, _date(table[index]) if index in table else None)

    def card_block_until(self, card_no: str) -> tuple[bool, dt.date | None]:
        index = hmac.digest(self.salt, b"card|" + card_no.encode("ascii"), "sha256")[:8]
        table = self.lists["blocked_cards"]
        return (index in table, _date(table[index]) if index in table else None)


def gunzip(body: bytes) -> bytes:
    """For tests that want to look inside a bundle."""
    return gzip.decompress(body)
