"""The simulator's physical third-generation card (protocol §3), and ways to break one.

This is the other side of the wire, written from the protocol alone: it must not import
`validator` (an import-linter contract), so the SSN check character and the cryptogram
are implemented again here. The conformance vectors (docs/card-vectors.md) hold both
implementations to the same bytes.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "Card",
    "CardExhausted",
    "card_id_for",
    "card_key",
    "cryptogram",
    "make_ssn",
    "new_un",
    "ssn_check_char",
    "tampered",
]

CardCredential = dict[str, str | int]

SPEC_VERSION = "3.00"
SSSE_RID = "D156000005"  # the SSSE application's registered identifier, inside card_id
MAX_ATC = 65535  # the counter does not wrap (§3)

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # ISO 7064 MOD 11-2
_CHECK_CHARS = "10X98765432"


class CardExhausted(RuntimeError):
    """The card's transaction counter is at 65535; a real card refuses to answer."""


def ssn_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need 17 ASCII digits")
    return _CHECK_CHARS[sum(w * int(c) for w, c in zip(_WEIGHTS, first17, strict=True)) % 11]


def make_ssn(
    region6: str, birth: dt.date, seq3: int, sex: Literal["M", "F"] | None = None
) -> str:
    """A well-formed SSN: region, birth date, 3-digit sequence code and check character.

    `sex`, when given, sets the parity of the sequence code (odd = male, GB 11643) by
    overriding the lowest bit of `seq3`, so a generator can number holders freely.
    """
    if len(region6) != 6 or not region6.isdigit() or not 0 <= seq3 <= 999:
        raise ValueError("region6 must be 6 digits and seq3 in 0..999")
    if sex is not None:
        seq3 = (seq3 & ~1) | (1 if sex == "M" else 0)
    first17 = f"{region6}{birth:%Y%m%d}{seq3:03d}"
    return first17 + ssn_check_char(first17)


def card_id_for(region: str, serial: int) -> str:
    """卡识别码: region + SSSE RID + the serial as 16 upper-case hex digits."""
    if not 0 <= serial < 1 << 64:
        raise ValueError("serial must fit in 64 bits")
    return f"{region}{SSSE_RID}{serial:016X}"


def card_key(master_key: bytes, card_id: str) -> bytes:
    """CK = SM4-ECB-Encrypt(MK, SM3(card_id ASCII)[0:16]), done at personalisation."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(card_id.encode("ascii"))
    encryptor = Cipher(algorithms.SM4(master_key), modes.ECB()).encryptor()
    return encryptor.update(digest.finalize()[:16]) + encryptor.finalize()


def cryptogram(ck: bytes, fields: CardCredential, terminal_id: str, scanned_at: int) -> str:
    """hex(SM4-CMAC(CK, M)[0:8]) over the §3 message built from a credential's fields."""
    message = "|".join(
        str(fields[name])
        for name in ("card_id", "ssn", "card_no", "issued", "expires", "atc")
    ) + f"|{str(fields['un']).upper()}|{terminal_id}|{scanned_at}"
    mac = cmac.CMAC(algorithms.SM4(ck))
    mac.update(message.encode("ascii"))
    return mac.finalize()[:8].hex()


def new_un() -> str:
    """A terminal's unpredictable number: 4 random bytes, 8 upper-case hex."""
    return secrets.token_hex(4).upper()


@dataclass
class Card:
    """A personalised card. `atc` is the number of transactions made so far.

    `master_key` is the issuer's MK for (region, kv); the card itself only keeps the
    diversified key, as a real card does after personalisation.
    """

    region: str
    ssn: str = field(repr=False)
    card_no: str
    card_id: str
    issued: str  # YYYYMMDD
    expires: str  # YYYYMMDD
    kv: int
    master_key: bytes = field(repr=False)
    atc: int = 0
    version: str = SPEC_VERSION
    _ck: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ck = card_key(self.master_key, self.card_id)

    def tap(self, terminal_id: str, scanned_at: int, un: str) -> CardCredential:
        """Answer a terminal: bump the counter, then MAC with it (as EMV cards do).

        Returns the JSON credential object of §3/§4. A fresh card's first tap has atc 1.
        """
        if self.atc >= MAX_ATC:
            raise CardExhausted(self.card_id)
        self.atc += 1
        credential: CardCredential = {
            "type": "ssc_card",
            "region": self.region,
            "ssn": self.ssn,
            "card_no": self.card_no,
            "card_id": self.card_id,
            "version": self.version,
            "issued": self.issued,
            "expires": self.expires,
            "kv": self.kv,
            "atc": self.atc,
            "un": un,
        }
        credential["cryptogram"] = cryptogram(self._ck, credential, terminal_id, scanned_at)
        return credential

    # --- fault injection -------------------------------------------------------------

    def clone(self, atc: int | None = None) -> Card:
        """A copy made by skimming this card, its counter at `atc` (default: now).

        Tapping the clone after the original has moved on yields a lower counter
        (`card_clone_suspected`), or an equal one (`replayed`).
        """
        twin = copy.copy(self)
        if atc is not None:
            twin.atc = atc
        return twin

    def with_kv(self, kv: int, master_key: bytes | None = None) -> Card:
        """A copy that announces key version `kv`; it keeps this card's key unless
        `master_key` is given, so its cryptograms fail against kv's real master key."""
        twin = copy.copy(self)
        twin.kv = kv
        if master_key is not None:
            twin.master_key = master_key
            twin._ck = card_key(master_key, self.card_id)
        return twin


def tampered(credential: CardCredential, **changes: str | int) -> CardCredential:
    """A tap altered in transit after the card MACed it (a field rewritten by a bad
    reader, or a man in the middle): the cryptogram no longer covers what is sent."""
    unknown = changes.keys() - credential.keys()
    if unknown:
        raise KeyError(f"no such credential field: {sorted(unknown)}")
    return {**credential, **changes}
