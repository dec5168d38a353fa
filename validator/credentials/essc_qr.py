"""ESSC1 electronic social-security card QR: decode and verify (protocol §2, steps 1–6).

`ESSC1:` + Base45 of a level-2 COSE_Sign1 signed by the phone's device key, whose
payload wraps the level-1 COSE_Sign1 (a CWT) in which an issuer certifies that key.
`EsscVerifier.verify` raises `Rejected` for the first failing step, in the protocol's
order.  Steps 7 (replay) and 8 (blocks) need the state store, so the decision pipeline
does them with the returned `nonce`, `holder_ref` and `card_no`.

Hot path: a level-1 credential lives for days and is shown on every scan, so a bounded
LRU keyed by its exact bytes remembers successful issuer verifications; the dynamic
level 2 is verified on every scan.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import ClassVar, NamedTuple, TypeAlias

from validator.credentials import cose
from validator.credentials.algorithm import Algorithm
from validator.credentials.algorithms import BY_COSE_ALG
from validator.credentials.trust import TrustedKey, TrustList
from validator.credentials.verified import Rejected, VerifiedCredential
from validator.lru import Lru
from validator.reasons import Reason
from validator.values import value

__all__ = ["PREFIX", "EsscVerifier", "Level1", "Level2", "QrScan", "b45decode", "parse_level1",
           "parse_level2"]

PREFIX = "ESSC1:"
CREDENTIAL_NOT_BEFORE_SKEW_S = 300  # iat may be this far ahead of our clock
QR_MAX_AGE_S = 60
QR_MAX_AHEAD_S = 30
NONCE_BYTES = range(8, 17)
KID_BYTES = 8

_CARD_NO = re.compile(r"[A-Z0-9]{9}")
_REGION = re.compile(r"[0-9]{6}")  # not str.isdigit(): that accepts non-ASCII digits


@value
class QrScan:
    """An e-card QR as a terminal scanned it (the `essc_qr` credential of §4)."""

    kind: ClassVar[str] = "essc_qr"
    qr: str


class _Credential(NamedTuple):
    """The level-1 claims this service uses, parsed and checked once."""

    holder_ref: str
    exp: int
    iat: int
    device_key: cose.PublicKey
    birth_date: dt.date
    region: str
    card_no: str
    device_alg: Algorithm  # the algorithm the cnf key fits (step 5)


class Level2(NamedTuple):
    """The phone's level-2 COSE_Sign1, parsed (not yet verified)."""

    sign1: cose.Sign1
    alg: int
    inner: bytes
    gen_time: int
    nonce: bytes


class Level1(NamedTuple):
    """The issuer's level-1 credential inside it, parsed (not yet verified)."""

    sign1: cose.Sign1
    alg: int
    kid: bytes
    credential: _Credential


class EsscVerifier:
    """Verifies ESSC1 QR text against an issuer trust list.

    Holds no state but the level-1 cache, so one instance serves every request; a new
    trust list means a new verifier (and a cold cache).  Safe to share between threads:
    a race on the cache costs at most a cache miss.
    """

    def __init__(self, trust: TrustList, *, level1_cache_size: int = 4096) -> None:
        self._trust = trust
        # inner COSE bytes → the claims and the key that verified them, `_Cached`
        self._cache: Lru[bytes, _Cached] = Lru(level1_cache_size)

    @property
    def cached_credentials(self) -> int:
        return len(self._cache)

    def check(self, credential: QrScan, terminal_id: str, scanned_at: dt.datetime,
              now: float, today: dt.date) -> VerifiedCredential:
        """The `Verifier` seam (`verifier.py`): `verify` the scanned QR text."""
        return self.verify(credential.qr, now, today)

    def named_holder(self, credential: QrScan) -> str | None:
        """The `Verifier` seam: the level-1 `sub` of the QR, unverified (None if the QR
        cannot be parsed that far). The cache holds the claims of these exact bytes."""
        try:
            inner = parse_level2(credential.qr).inner
            hit = self._cache.get(inner)
            return hit[0] if hit is not None else parse_level1(inner).credential.holder_ref
        except Rejected:
            return None

    def verify(self, qr: str, now: float, today: dt.date | None = None) -> VerifiedCredential:
        """Steps 1–6 of protocol §2 at Unix time `now`; raises `Rejected` on the first failure.

        `today` is the scan's local date, which `bd` must not be after (step 1); the
        decision pipeline always gives it. Without it that one check is skipped.
        """
        t = math.floor(now)
        outer = parse_level2(qr)
        credential = self._cached(outer.inner, t)
        inner = None
        if credential is None:
            inner = parse_level1(outer.inner)
            credential = inner.credential
        if today is not None and credential.birth_date > today:
            # On every scan, cached or not: the local date moves, the claims do not.
            raise Rejected(Reason.MALFORMED_CREDENTIAL, "level 1: bd is after the scan's date")
        try:
            if inner is not None:
                self._verify_issuer(inner, outer.inner, t)
            _check_validity(credential, t)
            _check_device_signature(credential, outer)
        except Rejected:
            # Step 1 wants an off-curve Ed25519 cnf key reported as malformed, but the
            # check costs ~40 µs.  libsodium never verifies with such a key, so running it
            # only here, when the scan is rejected anyway, yields the same outcome.
            if not credential.device_alg.point_is_valid(credential.device_key):
                raise Rejected(Reason.MALFORMED_CREDENTIAL,
                               "cnf: not a point on its curve") from None
            raise
        if t - outer.gen_time > QR_MAX_AGE_S:
            raise Rejected(Reason.QR_EXPIRED, f"generated {t - outer.gen_time} s ago")
        if outer.gen_time > t + QR_MAX_AHEAD_S:
            raise Rejected(Reason.QR_NOT_YET_VALID, f"generated {outer.gen_time - t} s ahead")
        return VerifiedCredential(
            kind="essc_qr",
            holder_ref=credential.holder_ref,
            birth_date=credential.birth_date,
            region=credential.region,
            card_no=credential.card_no,
            nonce=outer.nonce,
        )

    def _cached(self, inner: bytes, now: int) -> _Credential | None:
        """A remembered credential, if the key that verified it is still a candidate."""
        hit = self._cache.get(inner)
        if hit is None:
            return None
        credential, position = _unpack(hit)
        key = self._trust.keys[position]
        if key not in self._trust.candidates(key.kid, key.alg, now):
            return None  # e.g. that key's window closed: decide afresh (another may share kid)
        return credential

    def _verify_issuer(self, inner: Level1, inner_raw: bytes, now: int) -> None:
        """Steps 2–3: some candidate key must verify the level-1 signature; remembered."""
        candidates = self._trust.candidates(inner.kid, inner.alg, now)
        if not candidates:
            raise Rejected(
                Reason.UNKNOWN_KEY, f"no trusted key for kid {inner.kid.hex()} alg {inner.alg}"
            )
        signed = cose.sig_structure1(inner.sign1.protected_raw, inner.sign1.payload)
        for key in candidates:
            if key.verify(inner.sign1.signature, signed):
                self._remember(inner_raw, inner.credential, key)
                return
        raise Rejected(Reason.BAD_SIGNATURE, "level 1: no candidate key verifies")

    def _remember(self, inner: bytes, credential: _Credential, key: TrustedKey) -> None:
        position = next(i for i, k in enumerate(self._trust.keys) if k is key)
        self._cache.put(inner, _pack(credential, position))


# A cache entry is a plain tuple of strings, ints, a date, the device key in its
# algorithm's packed form (raw bytes for Ed25519, a `cryptography` key for P-256: not
# tracked objects), the COSE alg and the position of the issuer key in
# `TrustList.keys`. The garbage collector stops tracking such a tuple after one look,
# so a full cache (65,536 entries) costs full collections ~nothing; as a NamedTuple, a
# dataclass or holding a TrustedKey it cost them ~20 ms.
_Cached: TypeAlias = tuple[str, int, int, object, dt.date, str, str, int, int]


def _pack(credential: _Credential, position: int) -> _Cached:
    alg = credential.device_alg
    return (credential.holder_ref, credential.exp, credential.iat,
            alg.pack(credential.device_key), credential.birth_date, credential.region,
            credential.card_no, alg.cose_alg, position)


def _unpack(entry: _Cached) -> tuple[_Credential, int]:
    holder_ref, exp, iat, key, birth_date, region, card_no, alg_id, position = entry
    alg = BY_COSE_ALG[alg_id]
    return _Credential(holder_ref, exp, iat, alg.unpack(key), birth_date, region, card_no,
                       alg), position


def _check_validity(credential: _Credential, now: int) -> None:
    """Step 4, on every scan (cached or not)."""
    if credential.exp < now:
        raise Rejected(Reason.CREDENTIAL_EXPIRED, f"expired {now - credential.exp} s ago")
    if credential.iat > now + CREDENTIAL_NOT_BEFORE_SKEW_S:
        raise Rejected(Reason.CREDENTIAL_NOT_YET_VALID, f"issued {credential.iat - now} s ahead")


def _check_device_signature(credential: _Credential, outer: Level2) -> None:
    """Step 5: the level-2 alg must fit the certified key, whose signature must verify."""
    alg = credential.device_alg
    if alg.cose_alg != outer.alg:
        raise Rejected(Reason.MALFORMED_CREDENTIAL, "level 2: alg does not fit the cnf key")
    signed = cose.sig_structure1(outer.sign1.protected_raw, outer.sign1.payload)
    if not alg.verify(credential.device_key, outer.sign1.signature, signed):
        raise Rejected(Reason.BAD_SIGNATURE, "level 2: device signature")


def parse_level2(qr: str) -> Level2:
    """Prefix, Base45 and the level-2 structure (step 1 for level 2)."""
    if not qr.startswith(PREFIX):
        raise Rejected(Reason.UNSUPPORTED_CREDENTIAL, "no ESSC1: prefix")
    try:
        sign1 = cose.parse_sign1(b45decode(qr[len(PREFIX):]))
        alg = cose.header_alg(sign1.protected)
        body = cose.decode_map(sign1.payload, "level-2 payload")
        inner = cose.field(body, 1, bytes, "level-2 credential")
        gen_time = cose.uint_field(body, 2, "level-2 gen_time")
        nonce = cose.field(body, 3, bytes, "level-2 nonce")
        if len(nonce) not in NONCE_BYTES:
            raise cose.FormatError(f"nonce is {len(nonce)} bytes, expected 8–16")
    except cose.FormatError as exc:
        raise Rejected(Reason.MALFORMED_CREDENTIAL, f"level 2: {exc}") from None
    return Level2(sign1, alg, inner, gen_time, nonce)


def parse_level1(inner: bytes) -> Level1:
    """Step 1 for level 1: headers and claims."""
    try:
        sign1 = cose.parse_sign1(inner)
        alg = cose.header_alg(sign1.protected)
        kid = cose.field(sign1.protected, cose.HEADER_KID, bytes, "protected header kid")
        if len(kid) != KID_BYTES:
            raise cose.FormatError(f"kid is {len(kid)} bytes, expected {KID_BYTES}")
        return Level1(sign1, alg, kid, _parse_claims(sign1.payload))
    except cose.FormatError as exc:
        raise Rejected(Reason.MALFORMED_CREDENTIAL, f"level 1: {exc}") from None


def _parse_claims(payload: bytes) -> _Credential:
    """The CWT claims of §2's table, every one required; unknown claims are ignored."""
    claims = cose.decode_map(payload, "claims")
    cose.field(claims, 1, str, "iss")  # informative, but its type is part of the format
    sub = cose.field(claims, 2, bytes, "sub")
    if len(sub) != 16:
        raise cose.FormatError(f"sub is {len(sub)} bytes, expected 16")
    exp = cose.uint_field(claims, 4, "exp")
    iat = cose.uint_field(claims, 6, "iat")
    cnf = cose.as_map(claims.get(8), "cnf")
    device_alg, device_key = cose.parse_device_key(cnf.get(1))
    card_no = cose.field(claims, "cn", str, "cn")
    if not _CARD_NO.fullmatch(card_no):
        raise cose.FormatError("cn is not 9 of [A-Z0-9]")
    region = cose.field(claims, "rg", str, "rg")
    if not _REGION.fullmatch(region):
        raise cose.FormatError("rg is not 6 digits")
    birth_date = _birth_date(cose.uint_field(claims, "bd", "bd"))
    return _Credential(sub.hex(), exp, iat, device_key, birth_date, region, card_no,
                       device_alg)


def _birth_date(yyyymmdd: int) -> dt.date:
    if not 10000101 <= yyyymmdd <= 99991231:
        raise cose.FormatError("bd is not YYYYMMDD")
    try:
        return dt.date(yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100)
    except ValueError:
        raise cose.FormatError(f"bd {yyyymmdd} is not a real date") from None


_B45_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_DIGITS = bytes.maketrans(_B45_ALPHABET, bytes(range(45)))


def b45decode(text: str) -> bytes:
    """Strict Base45 (RFC 9285): no character outside the alphabet, no overflowing group.

    Each 3-character group c,d,e is the 16-bit value c + 45·d + 45²·e.  Rather than loop
    in Python (~25 µs for a QR), the c, d and e digits are each spread into 4-byte lanes
    of one big int, combined with two big-int multiply-adds (a lane peaks at 91124, so
    lanes never carry into each other) and the lanes read back: ~7 µs.
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise cose.FormatError("Base45: non-ASCII character") from None
    if raw.translate(None, _B45_ALPHABET):  # what is left is outside the alphabet
        raise cose.FormatError("Base45: character outside the alphabet")
    digits = raw.translate(_B45_DIGITS)
    groups, rest = divmod(len(digits), 3)
    if rest == 1:
        raise cose.FormatError("Base45: dangling character")
    span = 3 * groups
    lanes = []
    for offset in range(3):
        spread = bytearray(4 * groups)
        spread[0::4] = digits[offset:span:3]
        lanes.append(int.from_bytes(spread, "little"))
    values = (lanes[0] + 45 * lanes[1] + 2025 * lanes[2]).to_bytes(4 * groups, "little")
    if values[2::4].count(0) != groups:  # a group worth more than 0xFFFF
        raise cose.FormatError("Base45: group out of range")
    out = bytearray(2 * groups + rest // 2)
    out[0 : 2 * groups : 2] = values[1::4]  # big-endian: high byte first
    out[1 : 2 * groups : 2] = values[0::4]
    if rest:
        last = digits[-2] + 45 * digits[-1]
        if last > 0xFF:
            raise cose.FormatError("Base45: final pair out of range")
        out[-1] = last
    return bytes(out)
