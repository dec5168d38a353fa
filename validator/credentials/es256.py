"""ES256: ECDSA on P-256 with SHA-256, COSE `alg` -7, COSE_Key EC2 crv 1 (protocol §2).

The signature on the wire is raw `r||s` (64 bytes); OpenSSL, through `cryptography`,
verifies its DER form. A P-256 point is checked to be on the curve when the key is
built, so a bad cnf key is malformed at decode time.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from validator.credentials.algorithm import Algorithm
from validator.credentials.malformed import FormatError

__all__ = ["ALGORITHM", "COSE_ALG"]

COSE_ALG = -7

# One curve object for every key: each key keeps the one it was built with, and a fresh
# one per cached device key would be one more object for the garbage collector to track.
_P256 = ec.SECP256R1()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# `cryptography`'s concrete key class, which every key `load` returns is exactly.
_KEY_TYPE = type(ec.generate_private_key(_P256).public_key())


def load(x: bytes, y: bytes | None) -> ec.EllipticCurvePublicKey:
    if y is None or len(x) != 32 or len(y) != 32:
        raise FormatError("public key coordinate is not 32 bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + x + y)
    except ValueError:
        raise FormatError("P-256 public key is not a point on the curve") from None


def verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Raw 64-byte `r||s`; any other length is simply not valid."""
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def coordinates(public_key: object) -> tuple[bytes, bytes] | None:
    """(x, y) of a `cryptography` P-256 public key; None for any other key."""
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)):
        return None
    numbers = public_key.public_numbers()
    return numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")


ALGORITHM = Algorithm(
    cose_alg=COSE_ALG, jose_alg="ES256", jwk_kty="EC", jwk_crv="P-256", cose_kty=2,
    cose_crv=1, key_type=_KEY_TYPE, load=load, verify=verify,
    coordinates=coordinates,
)
