"""EdDSA with Ed25519, COSE `alg` -8, COSE_Key OKP crv 6 (protocol §2).

Verified through libsodium (PyNaCl), whose verify costs about half of OpenSSL's and
which refuses non-canonical signatures and small-order keys (docs/spec-readings.md).
A key is its 32 raw bytes: the cheap RFC 8032 encoding checks run when it is built;
the costly on-curve test (`point_is_valid`) runs only where it changes an outcome.
"""

from __future__ import annotations

from typing import NamedTuple

import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open

from validator.credentials.algorithm import Algorithm
from validator.credentials.malformed import FormatError

__all__ = ["ALGORITHM", "COSE_ALG", "Ed25519Key", "point_is_valid"]

COSE_ALG = -8
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P


class Ed25519Key(NamedTuple):
    """An Ed25519 public key: its 32 bytes, which libsodium verifies with."""

    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> Ed25519Key:
        return cls(raw)


def load(x: bytes, y: bytes | None) -> Ed25519Key:
    if y is not None or len(x) != 32:
        raise FormatError("public key coordinate is not 32 bytes")
    # The point is not decoded here.  The cheap RFC 8032 encoding checks run now, so a
    # non-canonical key is malformed; the costly on-curve test is point_is_valid, and
    # an off-curve key never verifies in libsodium anyway.
    if not _encoding_is_canonical(x):
        raise FormatError("Ed25519 public key is not a canonical encoding")
    return Ed25519Key.from_bytes(x)


def verify(key: Ed25519Key, signature: bytes, data: bytes) -> bool:
    """libsodium's strict verify: besides a wrong signature it refuses a non-canonical
    `S` (≥ the group order), a small-order `R` and a small-order key."""
    if len(signature) != 64:
        return False
    try:  # what nacl.signing.VerifyKey.verify does, without an object per key
        crypto_sign_open(signature + data, key.raw)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def _encoding_is_canonical(x: bytes) -> bool:
    """y < p, and no "negative zero" x (y = ±1 with the sign bit set): RFC 8032 §5.1.3."""
    y = int.from_bytes(x, "little") & ((1 << 255) - 1)
    return y < _P and not (x[31] >> 7 and y in (1, _P - 1))


def raw_point_is_valid(x: bytes) -> bool:
    """Whether 32 bytes decode to an Ed25519 point (RFC 8032 §5.1.3).

    Costs ~40 µs of Python big-int work, so callers run it only where it changes an
    outcome: libsodium's verify already fails for a key that is not on the curve.
    """
    if len(x) != 32 or not _encoding_is_canonical(x):
        return False
    y = int.from_bytes(x, "little") & ((1 << 255) - 1)
    u = (y * y - 1) % _P
    if u == 0:  # x = 0: the point (0, ±1)
        return True
    v = (_D * y * y + 1) % _P
    return _jacobi(u * v % _P, _P) == 1  # x² = u/v has a root iff u·v is a square


def point_is_valid(key: Ed25519Key) -> bool:
    return raw_point_is_valid(key.raw)


def _jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a/n) for odd n, binary algorithm: far cheaper than Euler's pow."""
    result = 1
    while a:
        twos = (a & -a).bit_length() - 1
        a >>= twos
        if twos & 1 and n & 7 in (3, 5):
            result = -result
        if a & n & 3 == 3:
            result = -result
        a, n = n % a, a
    return result if n == 1 else 0


def coordinates(public_key: object) -> tuple[bytes, None] | None:
    """(x, None) of a `cryptography` Ed25519 public key; None for any other key."""
    if not isinstance(public_key, Ed25519PublicKey):
        return None
    return public_key.public_bytes_raw(), None


def _pack(key: Ed25519Key) -> bytes:
    return key.raw  # a NamedTuple is tracked by the garbage collector, bytes are not


ALGORITHM = Algorithm(
    cose_alg=COSE_ALG, jose_alg="EdDSA", jwk_kty="OKP", jwk_crv="Ed25519", cose_kty=1,
    cose_crv=6, key_type=Ed25519Key, load=load, verify=verify,
    coordinates=coordinates, point_is_valid=point_is_valid, pack=_pack,
    unpack=Ed25519Key,
)
