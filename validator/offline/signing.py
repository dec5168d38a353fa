"""The bundle's signature: a tagged COSE_Sign1 (RFC 9052), EdDSA with Ed25519.

protected = {1: -8, 4: kid}, unprotected = {}, the payload a CBOR map (bundle.py),
the signature over `Sig_structure1` = ["Signature1", protected, h'', payload]. The kid is
the first 8 bytes of SHA-256 of the raw 32-byte public key, so a terminal holding
several published keys (a rotation) knows which one to try.
"""

from __future__ import annotations

import hashlib

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from validator.credentials.trust import b64url

__all__ = ["ALG_EDDSA", "TAG_SIGN1", "key_id", "public_jwk", "sign1"]

ALG_EDDSA = -8
TAG_SIGN1 = 18


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> bytes:
    """kid = SHA-256(raw public key)[0:8]."""
    return hashlib.sha256(_raw(public_key)).digest()[:8]


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK terminals are given (`bundle-public.json` holds {"keys": [this]})."""
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": b64url(key_id(public_key)), "x": b64url(_raw(public_key))}


def sign1(key: Ed25519PrivateKey, payload: bytes) -> bytes:
    """The tagged COSE_Sign1 of `payload` (already CBOR-encoded)."""
    protected = cbor2.dumps({1: ALG_EDDSA, 4: key_id(key.public_key())}, canonical=True)
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = key.sign(to_sign)
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected, {}, payload, signature]))
