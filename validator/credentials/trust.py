"""The issuer trust list: a JWKS of e-card platform keys (protocol §6).

Each key has `kid` (unpadded base64url of 8 bytes), `alg` (a registered JOSE name:
`ES256` with an EC P-256 key, `EdDSA` with an OKP Ed25519 key, ...; `algorithms.py`),
`iss` (informative) and optional `nbf`/`exp` in Unix seconds.  Several keys may share
a kid (a key roll-over), so a lookup returns every *candidate* and the caller tries
each (§2 steps 2–3).  A `TrustList` is immutable: reloading keys means building a new
one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from validator.credentials import cose
from validator.credentials.algorithm import Algorithm
from validator.credentials.algorithms import BY_JOSE_ALG

__all__ = ["TrustList", "TrustListError", "TrustedKey", "b64url", "public_jwk"]

KID_BYTES = 8
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class TrustListError(ValueError):
    """The trust list document is not a valid §6 JWKS; the message names key and field."""


@dataclass(frozen=True, slots=True, eq=False)
class TrustedKey:
    """One issuer public key; `alg` is the COSE number (-7 ES256, -8 EdDSA, ...)."""

    kid: bytes
    alg: int
    iss: str
    public_key: cose.PublicKey
    nbf: int | None = None
    exp: int | None = None

    def valid_at(self, now: int) -> bool:
        return (self.nbf is None or self.nbf <= now) and (self.exp is None or now <= self.exp)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Raw signatures (`r||s` for the EC algorithms); a wrong length is not valid."""
        return cose.verify_signature(self.public_key, self.alg, signature, data)


class TrustList:
    """Issuer keys indexed by kid."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self.keys = tuple(keys)  # in the document's order: a key's position names it
        by_kid: dict[bytes, list[TrustedKey]] = {}
        for key in self.keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(group) for kid, group in by_kid.items()}

    def __len__(self) -> int:
        return len(self.keys)

    def candidates(self, kid: bytes, alg: int, now: int) -> Sequence[TrustedKey]:
        """Keys with this kid and COSE alg whose `nbf ≤ now ≤ exp` (where present)."""
        return tuple(k for k in self._by_kid.get(kid, ()) if k.alg == alg and k.valid_at(now))

    @classmethod
    def from_jwks(cls, doc: object) -> TrustList:
        """Parse a JWKS document (already JSON-decoded); `TrustListError` on anything wrong."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise TrustListError("trust list: expected an object with a 'keys' array")
        return cls(_parse_jwk(index, jwk) for index, jwk in enumerate(doc["keys"]))


def _parse_jwk(index: int, jwk: object) -> TrustedKey:
    where = f"trust list keys[{index}]"
    if not isinstance(jwk, Mapping):
        raise TrustListError(f"{where}: not an object")
    if "d" in jwk:  # a private key in a file that is meant to be public
        raise TrustListError(f"{where}.d: private key material in the trust list")
    alg_name = _str(jwk, "alg", where)
    algorithm = BY_JOSE_ALG.get(alg_name)
    if algorithm is None:
        names = ", ".join(repr(name) for name in BY_JOSE_ALG)
        raise TrustListError(f"{where}.alg: {alg_name!r} is none of {names}")
    kty, crv = algorithm.jwk_kty, algorithm.jwk_crv
    if _str(jwk, "kty", where) != kty:
        raise TrustListError(f"{where}.kty: {alg_name} needs kty {kty!r}")
    if _str(jwk, "crv", where) != crv:
        raise TrustListError(f"{where}.crv: {alg_name} needs crv {crv!r}")
    kid = _b64url(jwk, "kid", where)
    if len(kid) != KID_BYTES:
        raise TrustListError(f"{where}.kid: {len(kid)} bytes, expected {KID_BYTES}")
    iss = _str(jwk, "iss", where)
    if not iss:
        raise TrustListError(f"{where}.iss: empty")
    nbf, exp = _time(jwk, "nbf", where), _time(jwk, "exp", where)
    if nbf is not None and exp is not None and nbf > exp:
        raise TrustListError(f"{where}.exp: before nbf")
    return TrustedKey(kid, algorithm.cose_alg, iss, _public_key(jwk, algorithm, where),
                      nbf, exp)


def _public_key(jwk: Mapping[str, object], algorithm: Algorithm, where: str) -> cose.PublicKey:
    x = _b64url(jwk, "x", where)
    y = _b64url(jwk, "y", where) if algorithm.has_y else None
    try:
        key = algorithm.load(x, y)
    except cose.FormatError as exc:
        raise TrustListError(f"{where}.x: {exc}") from None
    # Load time is the cheap place for a deferred point check (Ed25519's).
    if not algorithm.point_is_valid(key):
        raise TrustListError(f"{where}.x: not an {algorithm.jwk_crv} point")
    return key


def _str(jwk: Mapping[str, object], name: str, where: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise TrustListError(f"{where}.{name}: missing or not a string")
    return value


def _b64url(jwk: Mapping[str, object], name: str, where: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2), canonical: it must re-encode to itself."""
    text = _str(jwk, name, where)
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TrustListError(f"{where}.{name}: not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:
        raise TrustListError(f"{where}.{name}: non-canonical base64url")
    return raw


def _time(jwk: Mapping[str, object], name: str, where: str) -> int | None:
    value = jwk.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:  # bool is an int subclass: refuse it
        raise TrustListError(f"{where}.{name}: not a non-negative integer of Unix seconds")
    return value


def b64url(raw: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2), the encoding of every JWK member here."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(
    public_key: object,
    kid: bytes,
    alg: str,
    iss: str,
    nbf: int | None = None,
    exp: int | None = None,
) -> dict[str, object]:
    """The trust-list JWK for one issuer key (the inverse of `TrustList.from_jwks`).

    It takes the public key an issuer generates and signs with (a `cryptography` key,
    or the SM2 library's); `from_jwks` builds the verifying key from the JWK's
    coordinates.
    """
    if len(kid) != KID_BYTES:
        raise ValueError(f"kid must be {KID_BYTES} bytes")
    algorithm = BY_JOSE_ALG.get(alg)
    xy = algorithm.coordinates(public_key) if algorithm is not None else None
    if algorithm is None or xy is None:
        raise ValueError(f"alg {alg!r} does not fit a {type(public_key).__name__}")
    x, y = xy
    jwk: dict[str, object] = {"kty": algorithm.jwk_kty, "crv": algorithm.jwk_crv,
                              "x": b64url(x)}
    if y is not None:
        jwk["y"] = b64url(y)
    jwk.update(kid=b64url(kid), alg=alg, iss=iss)
    if nbf is not None:
        jwk["nbf"] = nbf
    if exp is not None:
        jwk["exp"] = exp
    return jwk
