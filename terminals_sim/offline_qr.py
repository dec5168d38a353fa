"""A terminal's own check of an ESSC1 QR (protocol §2 steps 1–6), against a bundle's
trust list: what an offline reader does before it looks at blocks and the policy.

Written from docs/protocol.md alone, as a vendor would port it: it imports nothing of
`validator`. ES256 and SM2 verify raw `r‖s` signatures; EdDSA is verified strictly
(libsodium refuses a non-canonical `S`, a small-order `R` and a small-order key).
The checks keep the protocol's order, so the first failure is the reason a terminal
shows; the service decides the record again at upload in any case (§8.4).

This reader checks shapes, types and signatures; it does not reproduce every reading of
§2 on encodings (indefinite lengths, duplicate map keys, non-canonical points): a QR that
only those would refuse is refused by the service at upload (`malformed_credential`).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
import gmssl_pyx
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_sign_open

from terminals_sim.sm2keys import DEFAULT_ID, ORDER, Sm2PublicKey, za

__all__ = ["Denied", "QrFacts", "TrustKey", "trust_keys", "verify_qr"]

PREFIX = "ESSC1:"
ALGS = {-7: "ES256", -8: "EdDSA", -65700: "SM2SM3"}  # COSE alg → trust-list `alg`
CRV_SM2 = -65701
QR_MAX_AGE_S, QR_AHEAD_S, IAT_AHEAD_S = 60, 30, 300
_CARD_NO = re.compile(r"[A-Z0-9]{9}")
_REGION = re.compile(r"[0-9]{6}")


class Denied(Exception):
    """A deny with one of the protocol's reason codes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TrustKey:
    """One issuer key of the bundle's `trust`: raw public bytes by algorithm."""

    kid: bytes
    alg: str  # "ES256" | "EdDSA" | "SM2SM3"
    public: bytes  # Ed25519: 32 bytes; P-256 and SM2: x ‖ y, 64 bytes
    nbf: int | None
    exp: int | None


@dataclass(frozen=True)
class QrFacts:
    """What a verified QR tells the rest of the decision."""

    sub: bytes  # holder_ref, 16 bytes
    nonce: bytes
    birth_date: dt.date
    card_no: str
    region: str


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def trust_keys(jwks: list[Mapping[str, Any]]) -> list[TrustKey]:
    """The bundle's `trust` entries (JWKs as CBOR maps) as keys to verify with."""
    keys = []
    for jwk in jwks:
        public = _b64(jwk["x"]) + (_b64(jwk["y"]) if "y" in jwk else b"")
        keys.append(TrustKey(_b64(jwk["kid"]), jwk["alg"], public, jwk.get("nbf"),
                             jwk.get("exp")))
    return keys


def _verify(alg: str, public: bytes, signature: bytes, data: bytes) -> bool:
    """One signature over `data` (the Sig_structure1 bytes); False for a wrong length."""
    if len(signature) != 64:
        return False
    if alg == "EdDSA":
        try:
            crypto_sign_open(signature + data, public)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError):
            return False
        return True
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if alg == "SM2SM3":
        if not (0 < r < ORDER and 0 < s < ORDER):
            return False
        digest = gmssl_pyx.sm3_hash(za(Sm2PublicKey(public[:32], public[32:]), DEFAULT_ID)
                                    + data)
        der = encode_dss_signature(r, s)
        try:
            return bool(gmssl_pyx.sm2_verify_sm3_digest(public, digest, der))
        except (gmssl_pyx.GmsslInnerError, gmssl_pyx.InvalidValueError, ValueError):
            return False
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big"),
            ec.SECP256R1()).public_key()
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _sign1(item: Any) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    """(protected bytes, protected map, payload, signature) of a COSE_Sign1."""
    if isinstance(item, cbor2.CBORTag):
        if item.tag != 18:
            raise Denied("malformed_credential")
        item = item.value
    if not (isinstance(item, list | tuple) and len(item) == 4):
        raise Denied("malformed_credential")
    protected_raw, unprotected, payload, signature = item
    if not (isinstance(protected_raw, bytes) and isinstance(unprotected, Mapping)
            and isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise Denied("malformed_credential")
    protected = cbor2.loads(protected_raw) if protected_raw else {}
    if not isinstance(protected, dict) or protected.get(1) not in ALGS or 2 in protected:
        raise Denied("malformed_credential")
    return protected_raw, protected, payload, signature


def _tbs(protected_raw: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected_raw, b"", payload])


def _uint(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise Denied("malformed_credential")
    return value


def _device_key(cnf: Any) -> tuple[str, bytes]:
    """(the algorithm the cnf key fits, its public bytes)."""
    key = cnf.get(1) if isinstance(cnf, Mapping) else None
    if not isinstance(key, Mapping) or -4 in key:
        raise Denied("malformed_credential")
    x, y = key.get(-2), key.get(-3)
    if key.get(1) == 1 and key.get(-1) == 6 and isinstance(x, bytes) and len(x) == 32:
        return "EdDSA", x
    if key.get(1) == 2 and isinstance(x, bytes) and isinstance(y, bytes) \
            and len(x) == len(y) == 32:
        if key.get(-1) == 1:
            return "ES256", x + y
        if key.get(-1) == CRV_SM2:
            return "SM2SM3", x + y
    raise Denied("malformed_credential")


def _claims(payload: bytes, today: dt.date) -> tuple[dict[Any, Any], QrFacts, str, bytes]:
    claims = cbor2.loads(payload)
    if not isinstance(claims, dict):
        raise Denied("malformed_credential")
    sub, cn, rg, bd = claims.get(2), claims.get("cn"), claims.get("rg"), _uint(claims.get("bd"))
    _uint(claims.get(4)), _uint(claims.get(6))
    if not (isinstance(claims.get(1), str) and isinstance(sub, bytes) and len(sub) == 16
            and isinstance(cn, str) and _CARD_NO.fullmatch(cn)
            and isinstance(rg, str) and _REGION.fullmatch(rg)):
        raise Denied("malformed_credential")
    try:
        birth = dt.date(bd // 10000, bd // 100 % 100, bd % 100)
    except ValueError:
        raise Denied("malformed_credential") from None
    if birth > today:
        raise Denied("malformed_credential")
    alg, device = _device_key(claims.get(8))
    return claims, QrFacts(sub, b"", birth, cn, rg), alg, device


@dataclass(frozen=True)
class _Parsed:
    """A QR's two levels, decoded and checked for shape, not yet verified."""

    outer: tuple[bytes, dict[Any, Any], bytes, bytes]  # protected raw, map, payload, sig
    inner: tuple[bytes, dict[Any, Any], bytes, bytes]
    gen_time: int
    kid: bytes
    claims: dict[Any, Any]
    facts: QrFacts
    device_alg: str
    device: bytes


def _parse(qr: str, today: dt.date) -> _Parsed:
    """Step 1: every shape and type, or `malformed_credential`."""
    if not qr.startswith(PREFIX):
        raise Denied("unsupported_credential")
    try:
        outer = _sign1(cbor2.loads(base45.b45decode(qr[len(PREFIX):])))
        body = cbor2.loads(outer[2])
        if not isinstance(body, dict) or not isinstance(body.get(1), bytes):
            raise Denied("malformed_credential")
        gen_time, nonce = _uint(body.get(2)), body.get(3)
        if not (isinstance(nonce, bytes) and 8 <= len(nonce) <= 16):
            raise Denied("malformed_credential")
        inner = _sign1(cbor2.loads(body[1]))
        kid = inner[1].get(4)
        if not (isinstance(kid, bytes) and len(kid) == 8):
            raise Denied("malformed_credential")
        claims, facts, device_alg, device = _claims(inner[2], today)
    except Denied:
        raise
    except Exception:  # a foreign decoder: anything it raises means "not a credential"
        raise Denied("malformed_credential") from None
    facts = QrFacts(facts.sub, nonce, facts.birth_date, facts.card_no, facts.region)
    return _Parsed(outer, inner, gen_time, kid, claims, facts, device_alg, device)


def verify_qr(qr: str, trust: list[TrustKey], now: int, today: dt.date) -> QrFacts:
    """Steps 1–6 of §2 at the terminal's clock `now` (whole Unix seconds), `today` its
    local date; `Denied` with the first failure's reason."""
    qr_ = _parse(qr, today)
    (inner_raw, inner_prot, claims_raw, inner_sig), claims = qr_.inner, qr_.claims
    alg = ALGS[inner_prot[1]]
    candidates = [k for k in trust if k.kid == qr_.kid and k.alg == alg
                  and (k.nbf is None or k.nbf <= now) and (k.exp is None or now <= k.exp)]
    if not candidates:
        raise Denied("unknown_key")
    tbs = _tbs(inner_raw, claims_raw)
    if not any(_verify(alg, k.public, inner_sig, tbs) for k in candidates):
        raise Denied("bad_signature")
    if claims[4] < now:
        raise Denied("credential_expired")
    if claims[6] > now + IAT_AHEAD_S:
        raise Denied("credential_not_yet_valid")
    outer_raw, outer_prot, body_raw, outer_sig = qr_.outer
    if ALGS[outer_prot[1]] != qr_.device_alg:
        raise Denied("malformed_credential")
    if not _verify(qr_.device_alg, qr_.device, outer_sig, _tbs(outer_raw, body_raw)):
        raise Denied("bad_signature")
    if now - qr_.gen_time > QR_MAX_AGE_S:
        raise Denied("qr_expired")
    if qr_.gen_time > now + QR_AHEAD_S:
        raise Denied("qr_not_yet_valid")
    return qr_.facts
