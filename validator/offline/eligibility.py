"""What a bundle says about holders and cards, readable only with the credential at hand.

PIPL: a stolen terminal must not list who is disabled. So every holder entry is found
and opened with keys derived from that holder's `holder_ref` — which a terminal learns
only from an e-card QR presented to it (its `sub`) — and the bundle's salt:

    okm        = HKDF-SHA256(IKM = holder_ref (16 bytes), salt = salt, info = INFO, L = 48)
    index      = okm[0:8]      the entry's key in `eligibility`
    key        = okm[8:40]     AES-256-GCM-SIV key (RFC 8452), nonce 12 zero bytes,
                               associated data = index
    hold_index = okm[40:48]    the entry's key in `blocked_holders`

Blocked cards are keyed by `HMAC-SHA256(salt, "card|" + card_no)[0:8]`. The salt changes
every UTC day, so entries cannot be linked across days. A deterministic AEAD is right
here: a key encrypts one holder's record only, and GCM-SIV leaks at most that the same
record was sealed twice; the bundle's signature covers integrity, the tag also tells a
terminal it opened the right entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from validator.policy.types import Category

__all__ = ["CATEGORY_CODES", "INFO", "card_index", "date_int", "derive", "epoch_salt",
           "seal", "unseal"]

INFO = b"ssc-offline-bundle-v1"
NONCE = bytes(12)
SALT_EPOCH_S = 86400
CATEGORY_CODES = {"veteran": 1, "disabled": 2}
_CODE_NAMES = {number: name for name, number in CATEGORY_CODES.items()}


def derive(holder_ref: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    """(index, AEAD key, hold_index) of one holder under `salt`."""
    okm = HKDF(hashes.SHA256(), 48, salt, INFO).derive(holder_ref)
    return okm[:8], okm[8:40], okm[40:48]


def card_index(card_no: str, salt: bytes) -> bytes:
    return hmac.digest(salt, b"card|" + card_no.encode("ascii"), "sha256")[:8]


def epoch_salt(seed: bytes, unix_s: float) -> bytes:
    """The salt of the UTC day of `unix_s`: the same in every process of a deployment
    (derived from a service secret), unpredictable to anyone else."""
    epoch = int(unix_s // SALT_EPOCH_S)
    return hmac.digest(seed, b"salt|" + str(epoch).encode(), "sha256")[:16]


def date_int(day: dt.date | None) -> int:
    """YYYYMMDD as an integer; 0 for "no end"."""
    return 0 if day is None else day.year * 10000 + day.month * 100 + day.day


def seal(holder_ref: bytes, salt: bytes, categories: Iterable[Category]) -> tuple[bytes, bytes]:
    """(index, ciphertext) of a holder's categories: [[code, grade or 0, until or 0]…]."""
    index, key, _ = derive(holder_ref, salt)
    plain = cbor2.dumps([[CATEGORY_CODES[c.code], c.grade or 0, date_int(c.until)]
                         for c in categories])
    return index, AESGCMSIV(key).encrypt(NONCE, plain, index)


def unseal(holder_ref: bytes, salt: bytes, ciphertext: bytes) -> list[Category]:
    """The categories of a sealed entry (tests, and the reference terminal's reading)."""
    index, key, _ = derive(holder_ref, salt)
    rows = cbor2.loads(AESGCMSIV(key).decrypt(NONCE, ciphertext, index))
    return [Category(_CODE_NAMES[code], grade or None,
                     None if not until else dt.date(until // 10000, until // 100 % 100,
                                                    until % 100))
            for code, grade, until in rows]


def hold_index(holder_ref: bytes, salt: bytes) -> bytes:
    return derive(holder_ref, salt)[2]


def seed_of(key_bytes: bytes) -> bytes:
    """A salt seed from the bundle key's private bytes, kept apart from the key itself."""
    return hashlib.sha256(b"ssc-offline-salt-seed|" + key_bytes).digest()
