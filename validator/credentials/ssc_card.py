"""Third-generation social-security card taps (`ssc_card`, protocol §3).

The terminal reads the card's files, sends it an unpredictable number `un`, and forwards
what it read together with the card's cryptogram. The validator plays the issuer's key
server: it diversifies the card's own key from the region's master key and recomputes the
cryptogram over the tap, the terminal and the scan time.

    CK = SM4-ECB-Encrypt(MK, SM3(card_id)[0:16])
    M  = card_id|ssn|card_no|issued|expires|atc|UN|terminal_id|scanned_at
    cryptogram = SM4-CMAC(CK, M)[0:8]

Only the stateless checks live here. The counter (`replayed`, `card_clone_suspected`),
blocks and policy need the state store and are the decision pipeline's; an expired card
is therefore *returned* with `late_denial=card_expired`, so that its counter still moves.

The raw SSN never outlives `verify`: it is not in the key cache, the returned value,
a rejection's detail, or `CardTap`'s repr.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Callable, Mapping
from typing import ClassVar

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from validator.credentials.verified import Rejected, VerifiedCredential
from validator.holders.ref import holder_ref
from validator.holders.ssn import InvalidSsn, birth_date_of_well_formed, parse_ssn
from validator.lru import Lru
from validator.reasons import Reason
from validator.values import field, value

__all__ = [
    "SUPPORTED_VERSION",
    "CardTap",
    "CardVerifier",
    "card_key",
    "cryptogram_message",
]

SUPPORTED_VERSION = "3.00"

# `[0-9]`, not `\d`, which also matches non-ASCII digits.
_REGION = re.compile(r"[0-9]{6}")
_CARD_NO = re.compile(r"[A-Z0-9]{9}")
_YYYYMMDD = re.compile(r"[0-9]{8}")
_UN = re.compile(r"[0-9A-Fa-f]{8}")
_CRYPTOGRAM = re.compile(r"[0-9A-Fa-f]{16}")
# 卡识别码: issuing region, the SSSE application's RID, a 16-upper-hex serial.
_CARD_ID = re.compile(r"([0-9]{6})D156000005[0-9A-F]{16}")
# Every format above in one pattern, over region|ssn|card_no|issued|expires|un|
# cryptogram|card_id (no field's alphabet has "|"): one regex call for a well-formed
# tap instead of nine. A tap it refuses goes through the checks one by one, which name
# the field at fault.
_WELL_FORMED = re.compile(
    r"[0-9]{6}\|[0-9]{17}[0-9X]\|[A-Z0-9]{9}\|[0-9]{8}\|[0-9]{8}\|[0-9A-Fa-f]{8}\|"
    r"[0-9A-Fa-f]{16}\|[0-9]{6}D156000005[0-9A-F]{16}"
)


@value
class CardTap:
    """What a terminal read from a card (the `ssc_card` credential of §3/§4).

    Built by the HTTP layer after its schema check (`kv`, `atc` JSON integers, the rest
    strings). The SSN is left out of the repr so that a logged tap does not leak it.
    """

    kind: ClassVar[str] = "ssc_card"
    region: str
    ssn: str = field(repr=False)
    card_no: str
    card_id: str
    version: str
    issued: str
    expires: str
    kv: int
    atc: int
    un: str
    cryptogram: str


def card_key(master_key: bytes, card_id: str) -> bytes:
    """The card's diversified key: CK = SM4-ECB-Encrypt(MK, SM3(card_id ASCII)[0:16])."""
    return _diversify(Cipher(algorithms.SM4(master_key), modes.ECB()).encryptor(), card_id)


def _diversify(ecb: CipherContext, card_id: str) -> bytes:
    """CK from an SM4-ECB encryptor under MK: ECB over exactly one block is a keyed
    permutation of the digest, as §3 specifies, and keeps no state between calls."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(card_id.encode("ascii"))
    return ecb.update(digest.finalize()[:16])


def cryptogram_message(tap: CardTap, terminal_id: str, scanned_at: int) -> bytes:
    """M of §3, the bytes the card MACs. Every field has a fixed alphabet without `|`."""
    return "|".join(
        (
            tap.card_id,
            tap.ssn,
            tap.card_no,
            tap.issued,
            tap.expires,
            str(tap.atc),
            tap.un.upper(),
            terminal_id,
            str(scanned_at),
        )
    ).encode("ascii")


class CardVerifier:
    """Verifies card taps against the card master keys (protocol §3).

    `master_keys` maps (region, kv) to a 16-byte MK; it is copied, so rotating keys means
    building a new verifier (which also drops every card key derived from the old ones).
    Diversified card keys are cached in an LRU of `card_key_cache_size` entries keyed by
    region, kv and card_id, so a returning card costs one CMAC; 0 disables the cache. A
    second LRU of that size remembers returning cards' holder_refs. Both hold only strings
    and CMAC contexts, so the garbage collector never walks them.
    """

    def __init__(
        self,
        master_keys: Mapping[tuple[str, int], bytes],
        pepper: bytes,
        *,
        card_key_cache_size: int = 65536,
    ) -> None:
        if card_key_cache_size < 0:
            raise ValueError("card_key_cache_size must be >= 0")
        keys: dict[tuple[str, int], bytes] = {}
        for (region, kv), key in master_keys.items():
            if len(key) != 16:
                raise ValueError(f"card master key for region {region} kv {kv} is not 16 bytes")
            keys[(region, kv)] = bytes(key)
        self._master_keys = keys
        self._pepper = pepper

        # One SM4-ECB context per master key: building a Cipher costs twice what the
        # derivation itself does.
        self._ecb = {ident: Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
                     for ident, key in keys.items()}
        self._card_keys: Lru[str, cmac.CMAC] = Lru(card_key_cache_size)
        # A returning card's holder_ref, keyed by card_id and the SSN's (process-salted)
        # hash, never the SSN itself: the HMAC-SM3 it saves is ~1.5 µs of a warm card's
        # ~12 µs verification. Only one SSN verifies with a card_id (the cryptogram covers it),
        # so the hash is a guard, not what makes the entry right.
        self._holder_refs: Lru[str, str] = Lru(card_key_cache_size)

    @property
    def cached_card_keys(self) -> int:
        """How many diversified card keys the LRU holds now."""
        return len(self._card_keys)

    def _keyed_cmac(self, region: str, kv: int, card_id: str) -> cmac.CMAC:
        """A CMAC context with CK loaded: `copy()` of it is ~3x cheaper than a new one."""
        # A string key, not a tuple: a fresh tuple is a tracked object, and one inserted
        # would make the collector walk the whole cache again.
        name = f"{region}|{kv}|{card_id}"
        keyed = self._card_keys.get(name)
        if keyed is None:
            keyed = cmac.CMAC(algorithms.SM4(_diversify(self._ecb[(region, kv)], card_id)))
            self._card_keys.put(name, keyed)
        return keyed

    def _holder_ref(self, card_id: str, ssn: str) -> str:
        name = f"{card_id}|{hash(ssn)}"
        ref = self._holder_refs.get(name)
        if ref is None:
            ref = holder_ref(self._pepper, ssn)
            self._holder_refs.put(name, ref)
        return ref

    def check(self, credential: CardTap, terminal_id: str, scanned_at: dt.datetime,
              now: float, today: dt.date) -> VerifiedCredential:
        """The `Verifier` seam (`verifier.py`): `verify` at the floor of `scanned_at`."""
        return self.verify(credential, terminal_id, int(scanned_at.timestamp() // 1), today)

    def named_holder(self, credential: CardTap) -> str | None:
        """The `Verifier` seam: the holder_ref of the tap's SSN field, unverified (None
        if it is not an ASCII string). Not through the holder_ref cache, whose entries
        only verified taps may make."""
        ssn = credential.ssn
        if type(ssn) is not str or not ssn.isascii():
            return None
        return holder_ref(self._pepper, ssn)

    def verify(
        self, tap: CardTap, terminal_id: str, scanned_at: int, today: dt.date
    ) -> VerifiedCredential:
        """Check a tap in §3 order; raise `Rejected` with the first failing reason.

        `terminal_id` is the authenticated X-Terminal-Id, `scanned_at` the floor of the
        request's scanned_at in Unix seconds, `today` the local date. The counter and
        expiry are left to the pipeline: see `VerifiedCredential.late_denial`.
        """
        try:
            birth_date, expires = _check_fields(tap, today)
        except TypeError:
            # Only reachable if the HTTP schema let a non-string / non-int through.
            raise Rejected(Reason.MALFORMED_CREDENTIAL, "a field has the wrong type") from None
        if tap.version != SUPPORTED_VERSION:
            raise Rejected(Reason.UNSUPPORTED_CARD_VERSION, "version")
        if (tap.region, tap.kv) not in self._master_keys:
            raise Rejected(Reason.UNKNOWN_KEY, "no card master key for (region, kv)")
        expected = _cryptogram(self._keyed_cmac(tap.region, tap.kv, tap.card_id), tap,
                               terminal_id, scanned_at)
        if not hmac.compare_digest(expected, bytes.fromhex(tap.cryptogram)):
            raise Rejected(Reason.CRYPTOGRAM_INVALID, "cryptogram")
        return VerifiedCredential(
            kind="ssc_card",
            holder_ref=self._holder_ref(tap.card_id, tap.ssn),
            birth_date=birth_date,
            region=tap.region,
            card_no=tap.card_no,
            card_id=tap.card_id,
            atc=tap.atc,
            late_denial=Reason.CARD_EXPIRED if expires < today else None,
        )


def _cryptogram(keyed: cmac.CMAC, tap: CardTap, terminal_id: str, scanned_at: int) -> bytes:
    # A separate frame on purpose: M holds the SSN, and this frame is gone before
    # `verify` raises, so a kept `Rejected` traceback cannot reach M.
    mac = keyed.copy()
    mac.update(cryptogram_message(tap, terminal_id, scanned_at))
    return mac.finalize()[:8]


def _malformed(detail: str) -> Rejected:
    return Rejected(Reason.MALFORMED_CREDENTIAL, detail)


def _check_fields(tap: CardTap, today: dt.date) -> tuple[dt.date, dt.date]:
    """The `malformed_credential` checks of §3; returns (birth date, expiry date)."""
    formats = (tap.region, tap.ssn, tap.card_no, tap.issued, tap.expires, tap.un,
               tap.cryptogram, tap.card_id)
    if _WELL_FORMED.fullmatch("|".join(formats)) is None:
        return _check_fields_one_by_one(tap, today)  # raises, naming the field at fault
    # Only what a pattern cannot say is left, in the order of the checks one by one.
    try:
        birth_date = birth_date_of_well_formed(tap.ssn, today)
    except InvalidSsn as exc:
        raise _malformed(f"ssn: {exc}") from None  # names the failed check, not the SSN
    expires = _validity(tap, _real_date)
    _check_counters(tap)
    if not tap.card_id.startswith(tap.region):
        raise _malformed("card_id region prefix differs from region")
    return birth_date, expires


def _check_fields_one_by_one(tap: CardTap, today: dt.date) -> tuple[dt.date, dt.date]:
    if not _REGION.fullmatch(tap.region):
        raise _malformed("region")
    try:
        birth_date = parse_ssn(tap.ssn, today)
    except InvalidSsn as exc:
        raise _malformed(f"ssn: {exc}") from None  # names the failed check, not the SSN
    if not _CARD_NO.fullmatch(tap.card_no):
        raise _malformed("card_no")
    expires = _validity(tap, _date)
    _check_numbers(tap)
    card_id = _CARD_ID.fullmatch(tap.card_id)
    if card_id is None:
        raise _malformed("card_id")
    if card_id.group(1) != tap.region:
        raise _malformed("card_id region prefix differs from region")
    return birth_date, expires


def _validity(tap: CardTap, date_of: Callable[[str], dt.date | None]) -> dt.date:
    """The expiry date, after checking both dates with `date_of` and their order."""
    issued = date_of(tap.issued)
    if issued is None:
        raise _malformed("issued")
    expires = date_of(tap.expires)
    if expires is None:
        raise _malformed("expires")
    if issued > expires:
        raise _malformed("issued after expires")
    return expires


def _check_numbers(tap: CardTap) -> None:
    _check_counters(tap)
    if not _UN.fullmatch(tap.un):
        raise _malformed("un")
    if not _CRYPTOGRAM.fullmatch(tap.cryptogram):
        raise _malformed("cryptogram")


def _check_counters(tap: CardTap) -> None:
    # `type(...) is int` rejects bool, which JSON `true` would become.
    if type(tap.kv) is not int or not 1 <= tap.kv <= 255:
        raise _malformed("kv")
    if type(tap.atc) is not int or not 0 <= tap.atc <= 65535:
        raise _malformed("atc")


def _date(yyyymmdd: str) -> dt.date | None:
    if not _YYYYMMDD.fullmatch(yyyymmdd):
        return None
    return _real_date(yyyymmdd)


def _real_date(yyyymmdd: str) -> dt.date | None:
    """The date of 8 ASCII digits, or None if there is no such day."""
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:  # 30 February, month 13, year 0000
        return None
