"""SM2 with SM3 (国密, protocol §2.1): COSE `alg` -65700, COSE_Key EC2 crv -65701.

Verified through Tongsuo (`tongsuopy`: the Tongsuo project's Python SDK, a fork of
pyca/cryptography that bundles Tongsuo, itself OpenSSL 3 with the national algorithms
maintained by the OpenAtom Foundation). Its SM2 signature computes
`Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` with the default user ID
`1234567812345678` of GM/T 0009 and `e = SM3(Z_A ‖ M)`, as §2.1 requires (a signature
made with the empty ID, or over `SM3(M)` alone, does not verify: tests/credentials).
`cryptography` refuses the SM2 curve, and no curve arithmetic is written here.

The wire signature is raw `r‖s`, 32 bytes each; `r` and `s` outside [1, n−1] are
refused before the library sees them, and the rest is re-encoded as the DER the
library verifies. A key's point is checked to be on the curve when it is built.

The level-1 cache holds a device key as its 64 point bytes, not as Tongsuo's key
object: that object is a Python instance with a `__dict__`, which the garbage collector
tracks, and 65,536 of them made each full collection 30–45 ms dearer (bench/gcwalk.py).
Building the key again from the bytes at each cached scan costs 30–60 µs, about a tenth
of the SM2 verify it precedes.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tongsuopy.crypto import hashes, serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

from validator.credentials.algorithm import Algorithm
from validator.credentials.malformed import FormatError

__all__ = ["ALGORITHM", "COSE_ALG", "COSE_CRV", "CURVE_OID", "N", "generate_private_key",
           "load", "private_key_pem"]

COSE_ALG = -65700
COSE_CRV = -65701
CURVE_OID = "1.2.156.10197.1.301"  # sm2p256v1, GB/T 32918.5
# The order of the SM2 base point (GB/T 32918.5): r and s must lie in [1, N-1].
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

_CURVE = ec.SM2()
_SM2_SM3 = ec.ECDSA(hashes.SM3())  # tongsuopy's name for "SM2 signature with SM3"
# The generator (GB/T 32918.5), only to learn the library's concrete key class.
_G = bytes.fromhex(
    "0432C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
_KEY_TYPE = type(ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, _G))


def load(x: bytes, y: bytes | None) -> Any:
    """An SM2 verifying key from its coordinates; `FormatError` if not on the curve."""
    if y is None or len(x) != 32 or len(y) != 32:
        raise FormatError("public key coordinate is not 32 bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, b"\x04" + x + y)
    except ValueError:
        raise FormatError("SM2 public key is not a point on the curve") from None


def verify(key: Any, signature: bytes, data: bytes) -> bool:
    """Raw 64-byte `r‖s` over `data` with the default user ID; anything else is False."""
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    try:
        key.verify(encode_dss_signature(r, s), data, _SM2_SM3)
    except InvalidSignature:
        return False
    return True


def coordinates(public_key: object) -> tuple[bytes, bytes] | None:
    """(x, y) of a tongsuopy SM2 public key; None for any other key."""
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SM2)):
        return None
    point = _pack(public_key)
    return point[:32], point[32:]


def generate_private_key() -> Any:
    """A new SM2 private key (an issuer's, for dev and test key sets)."""
    return ec.generate_private_key(_CURVE)


def private_key_pem(key: Any) -> bytes:
    """PKCS#8 PEM: id-ecPublicKey with the named curve 1.2.156.10197.1.301 (§2.1)."""
    pem: bytes = key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return pem


def _pack(key: Any) -> bytes:
    """The device key as the level-1 cache holds it: x‖y, which the collector never walks."""
    numbers = key.public_numbers()
    return bytes(numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big"))


def _unpack(point: bytes) -> Any:
    return load(point[:32], point[32:])


ALGORITHM = Algorithm(
    cose_alg=COSE_ALG, jose_alg="SM2SM3", jwk_kty="EC", jwk_crv="SM2", cose_kty=2,
    cose_crv=COSE_CRV, key_type=_KEY_TYPE, load=load, verify=verify,
    coordinates=coordinates, pack=_pack, unpack=_unpack,
)
