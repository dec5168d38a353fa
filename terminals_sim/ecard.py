"""The simulator's e-card platform (issuer) and phone: ESSC1 QR codes (protocol §2).

The other side of the wire, written from the protocol alone: it must not import
`validator` (an import-linter contract), so COSE signing is done again here.  The
conformance vector (docs/essc-vectors.md) holds both sides to the same bytes.

Maps are encoded deterministically (RFC 8949 §4.2.1).  Besides `Issuer.issue` and
`Phone.qr`, the lower-level `sign1`, `Issuer.sign`, `Phone.level2`, `claims_map`,
`to_qr` and `tampered` let a test or a fault scenario build any bad QR: wrong alg
headers, missing or retyped claims, a stripped level 2, flipped bytes.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

import base45
import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from terminals_sim.sm2keys import Sm2PrivateKey, Sm2PublicKey
from terminals_sim.sm2keys import load_pem as load_sm2_pem

__all__ = [
    "COSE_ALGS",
    "PREFIX",
    "Alg",
    "Issuer",
    "Phone",
    "PrivateKey",
    "PublicKey",
    "alg_of",
    "claims_map",
    "cose_key",
    "generate_key",
    "key_from_bytes",
    "load_issuers",
    "private_bytes",
    "sign1",
    "signature",
    "tampered",
    "to_qr",
]

Alg = Literal["ES256", "EdDSA", "SM2"]
PrivateKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | Sm2PrivateKey
PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey | Sm2PublicKey

PREFIX = "ESSC1:"
# SM2 with SM3 and its curve have private-use COSE numbers (§2.1).
COSE_ALGS: dict[str, int] = {"ES256": -7, "EdDSA": -8, "SM2": -65700}
CRV_SM2 = -65701
TAG_SIGN1 = 18


def alg_of(key: PrivateKey | PublicKey) -> Alg:
    if isinstance(key, Sm2PrivateKey | Sm2PublicKey):
        return "SM2"
    return "EdDSA" if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey) else "ES256"


def generate_key(alg: Alg) -> PrivateKey:
    if alg == "EdDSA":
        return Ed25519PrivateKey.generate()
    if alg == "SM2":
        return Sm2PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def private_bytes(key: PrivateKey) -> bytes:
    """The private key as 32 raw bytes (Ed25519's seed, the EC scalar), for `key_from_bytes`."""
    if isinstance(key, Ed25519PrivateKey):
        return key.private_bytes_raw()
    if isinstance(key, Sm2PrivateKey):
        return key.d
    return key.private_numbers().private_value.to_bytes(32, "big")


def key_from_bytes(alg: Alg, raw: bytes) -> PrivateKey:
    if alg == "EdDSA":
        return Ed25519PrivateKey.from_private_bytes(raw)
    if alg == "SM2":
        return Sm2PrivateKey.from_bytes(raw)
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def _dumps(item: object) -> bytes:
    return cbor2.dumps(item, canonical=True)


def signature(key: PrivateKey, data: bytes) -> bytes:
    """EdDSA, or ES256 and SM2 as COSE wants them: raw 64-byte `r||s`, not DER."""
    if isinstance(key, Ed25519PrivateKey | Sm2PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign1(
    key: PrivateKey,
    payload: bytes,
    protected: Mapping[int, object] | None = None,
    *,
    unprotected: Mapping[object, object] | None = None,
    tag: bool = True,
) -> bytes:
    """A COSE_Sign1 over `payload`; `protected` defaults to `{1: <the key's alg>}`.

    The header is written as given and the key signs with its own algorithm, so passing
    another alg in `protected` makes a QR whose header lies.
    """
    header = protected if protected is not None else {1: COSE_ALGS[alg_of(key)]}
    protected_raw = _dumps(dict(header))
    to_sign = _dumps(["Signature1", protected_raw, b"", payload])
    body = [protected_raw, dict(unprotected or {}), payload, signature(key, to_sign)]
    return _dumps(cbor2.CBORTag(TAG_SIGN1, body) if tag else body)


def cose_key(public_key: PublicKey) -> dict[int, object]:
    if isinstance(public_key, Ed25519PublicKey):
        return {1: 1, -1: 6, -2: public_key.public_bytes_raw()}
    if isinstance(public_key, Sm2PublicKey):
        return {1: 2, -1: CRV_SM2, -2: public_key.x, -3: public_key.y}
    numbers = public_key.public_numbers()
    return {1: 2, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}


def claims_map(
    *,
    iss: str,
    sub: bytes,
    birth_date: int,
    card_no: str,
    region: str,
    device_public_key: PublicKey,
    iat: int,
    exp: int,
) -> dict[object, object]:
    """The CWT claims of §2 as a map a test may edit before `Issuer.sign`."""
    return {1: iss, 2: sub, 4: exp, 6: iat, 8: {1: cose_key(device_public_key)},
            "bd": birth_date, "cn": card_no, "rg": region}


def to_qr(cose: bytes) -> str:
    """QR text for any COSE bytes (a level 2 normally; a level 1 alone to test stripping)."""
    encoded: bytes = base45.b45encode(cose)
    return PREFIX + encoded.decode("ascii")


def tampered(data: bytes, index: int = -1, xor: int = 0x01) -> bytes:
    """`data` with one byte flipped (the last by default: inside the signature)."""
    flipped = bytearray(data)
    flipped[index] ^= xor
    return bytes(flipped)


@dataclass(frozen=True)
class Issuer:
    """An e-card platform signing level-1 credentials with one issuer key."""

    private_key: PrivateKey
    kid: bytes
    iss: str
    alg: Alg

    @classmethod
    def generate(cls, alg: Alg, iss: str = "CN-369900-ESSC", kid: bytes | None = None) -> Issuer:
        return cls(generate_key(alg), kid or os.urandom(8), iss, alg)

    def sign(
        self, claims: Mapping[object, object], *, tag: bool = True,
        protected: Mapping[int, object] | None = None,
    ) -> bytes:
        """A level-1 COSE_Sign1 over any claims map; headers default to `{1: alg, 4: kid}`."""
        header = protected if protected is not None else {1: COSE_ALGS[self.alg], 4: self.kid}
        return sign1(self.private_key, _dumps(dict(claims)), header, tag=tag)

    def issue(
        self,
        sub: bytes,
        birth_date: int,
        card_no: str,
        region: str,
        device_public_key: PublicKey,
        iat: int,
        exp: int,
        *,
        tag: bool = True,
    ) -> bytes:
        """A well-formed level-1 credential certifying `device_public_key`."""
        claims = claims_map(iss=self.iss, sub=sub, birth_date=birth_date, card_no=card_no,
                            region=region, device_public_key=device_public_key, iat=iat, exp=exp)
        return self.sign(claims, tag=tag)


@dataclass(frozen=True)
class Phone:
    """A phone holding a level-1 credential and the device key it certifies."""

    level1: bytes
    device_private_key: PrivateKey
    alg: Alg

    def level2(
        self, gen_time: int, nonce: bytes | None = None, *, tag: bool = True,
        protected: Mapping[int, object] | None = None,
    ) -> bytes:
        """The dynamic code: `{1: level1, 2: gen_time, 3: nonce}` signed by the device key."""
        body = {1: self.level1, 2: gen_time, 3: os.urandom(16) if nonce is None else nonce}
        header = protected if protected is not None else {1: COSE_ALGS[self.alg]}
        return sign1(self.device_private_key, _dumps(body), header, tag=tag)

    def qr(self, gen_time: int, nonce: bytes | None = None, *, tag: bool = True) -> str:
        return to_qr(self.level2(gen_time, nonce, tag=tag))


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwk_public_bytes(jwk: Mapping[str, object]) -> bytes:
    return b"".join(_b64url_decode(str(jwk[c])) for c in ("x", "y") if c in jwk)


def _public_bytes(key: PrivateKey) -> bytes:
    public = key.public_key()
    if isinstance(public, Ed25519PublicKey):
        return public.public_bytes_raw()
    if isinstance(public, Sm2PublicKey):
        return public.x + public.y
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )[1:]


def _load_issuer_key(pem: Path) -> PrivateKey:
    """`cryptography` reads Ed25519 and P-256 keys; it refuses the SM2 curve, which the
    SM2 library reads."""
    text = pem.read_bytes()
    sm2_key = load_sm2_pem(text)
    if sm2_key is not None:
        return sm2_key
    key = serialization.load_pem_private_key(text, password=None)
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pem}: not an Ed25519, EC or SM2 private key")
    return key


def load_issuers(keys_dir: Path) -> list[Issuer]:
    """Issuers of a dev/test key set: `issuers/<kid>[-<suffix>].pem` (§6).

    The kid is the file name's first 11 characters (unpadded base64url of 8 bytes may
    itself contain '-'); `iss` and `alg` come from the trust-list entry with that kid
    and the same public key, so keys that share a kid are told apart.
    """
    trust = json.loads((keys_dir / "trust-list.json").read_text("utf-8"))
    issuers = []
    for pem in sorted((keys_dir / "issuers").glob("*.pem")):
        key = _load_issuer_key(pem)
        kid_text = pem.stem[:11]
        matches = [jwk for jwk in trust["keys"] if jwk.get("kid") == kid_text
                   and _jwk_public_bytes(jwk) == _public_bytes(key)]
        if not matches:
            raise ValueError(f"{pem}: no trust-list key with kid {kid_text} and this public key")
        jwk = matches[0]
        issuers.append(Issuer(key, _b64url_decode(kid_text), str(jwk["iss"]), alg_of(key)))
    return issuers
