"""SM2 keys for the simulator's e-card platform and phones (protocol §2.1).

Signing goes through GmSSL (`gmssl_pyx`), an implementation independent of the one the
validator verifies with, so the simulator is a second client on the wire. PKCS#8 PEM
files (issuers/<kid>.pem, named curve 1.2.156.10197.1.301) are read with Tongsuo's
SDK, which GmSSL's binding has no reader for. Besides the §2.1 signature (default user
ID `1234567812345678`), a key can make the two wrong ones a fault scenario needs: one
over `SM3(M)` without `Z_A`, and one whose `Z_A` used the empty ID.

Every signature is GmSSL's `sm2_sign_sm3_digest` over `e = SM3(Z_A ‖ M)`, with `Z_A`
hashed here once per key (SM3 over the ID, the curve constants and the public point; no
curve arithmetic): GmSSL's own ID-taking `sm2_sign` spends ~5 ms a signature against
~0.5 ms this way, and a load run pre-builds thousands. tests/credentials holds `Z_A` to
GmSSL's own: its ID-taking verifier accepts what `sign` makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gmssl_pyx
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tongsuopy.crypto import serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import UnsupportedAlgorithm

__all__ = ["DEFAULT_ID", "ORDER", "Sm2PrivateKey", "Sm2PublicKey", "load_pem", "za"]

DEFAULT_ID = b"1234567812345678"
# n, the order of the base point (GB/T 32918.5): a fault scenario writes r = 0 or s = n.
ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
# GB/T 32918.5 curve parameters a, b, x_G, y_G: the bytes Z_A hashes (no arithmetic).
_CURVE_BYTES = bytes.fromhex(
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


@dataclass(frozen=True)
class Sm2PublicKey:
    x: bytes  # 32 bytes, big-endian
    y: bytes


@dataclass(frozen=True)
class Sm2PrivateKey:
    d: bytes  # 32 bytes, big-endian
    public: Sm2PublicKey

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        public, private = gmssl_pyx.sm2_key_generate()
        return cls(private, Sm2PublicKey(public[:32], public[32:]))

    @classmethod
    def from_bytes(cls, d: bytes) -> Sm2PrivateKey:
        """The key with private scalar `d` (32 bytes); its public point from Tongsuo."""
        public = ec.derive_private_key(int.from_bytes(d, "big"), ec.SM2()).public_key()
        numbers = public.public_numbers()
        return cls(d, Sm2PublicKey(numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")))

    def public_key(self) -> Sm2PublicKey:
        return self.public

    @cached_property
    def _za(self) -> bytes:
        return self.za(DEFAULT_ID)

    def za(self, user_id: bytes) -> bytes:
        return za(self.public, user_id)

    def sign(self, data: bytes) -> bytes:
        """§2.1: raw 64-byte `r‖s` over `data`, `Z_A` with the default user ID."""
        return self._sign_digest(gmssl_pyx.sm3_hash(self._za + data))

    def sign_without_za(self, data: bytes) -> bytes:
        """A wrong signature: `e = SM3(M)`, no `Z_A` (as a plain ECDSA-style signer does)."""
        return self._sign_digest(gmssl_pyx.sm3_hash(data))

    def sign_with_empty_id(self, data: bytes) -> bytes:
        """A wrong signature: `Z_A` over the empty user ID (ENTL = 0)."""
        return self._sign_digest(gmssl_pyx.sm3_hash(self.za(b"") + data))

    def _sign_digest(self, e: bytes) -> bytes:
        return _raw(gmssl_pyx.sm2_sign_sm3_digest(self.d, e))


def za(public: Sm2PublicKey, user_id: bytes) -> bytes:
    """`Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)`, ENTL_A the ID's bits;
    a verifier (an offline terminal) hashes it for the signer's public key."""
    entl = (8 * len(user_id)).to_bytes(2, "big")
    z: bytes = gmssl_pyx.sm3_hash(entl + user_id + _CURVE_BYTES + public.x + public.y)
    return z


def _raw(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def load_pem(pem: bytes) -> Sm2PrivateKey | None:
    """An SM2 private key from PKCS#8 PEM; None if the PEM holds another kind of key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # another curve or kind of key
        return None
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SM2)):
        return None
    numbers = key.private_numbers()
    public = numbers.public_numbers
    return Sm2PrivateKey(numbers.private_value.to_bytes(32, "big"),
                         Sm2PublicKey(public.x.to_bytes(32, "big"), public.y.to_bytes(32, "big")))
