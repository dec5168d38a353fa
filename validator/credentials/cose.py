"""Minimal, strict COSE_Sign1 (RFC 9052) and COSE_Key (RFC 9053) handling for ESSC1.

Only what the e-card QR needs (protocol §2): decode a COSE_Sign1 with or without CBOR
tag 18, build its `Sig_structure1`, read the `alg`/`kid` headers, turn an Ed25519 or
P-256 COSE_Key into a public key, and check an ES256 (raw `r||s`) or EdDSA signature.
ES256 goes through `cryptography` (OpenSSL); Ed25519 through libsodium (PyNaCl), whose
verify costs about half of OpenSSL's and which refuses non-canonical signatures and
small-order keys (docs/protocol.md, §2).

Every shape problem raises `FormatError`; the caller maps it to `malformed_credential`.
The CBOR decoder is a foreign boundary, so *any* exception it raises is translated here.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeAlias, TypeVar, cast

import cbor2
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_sign_open

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "HEADER_KID",
    "SIGN_ALGS",
    "Ed25519Key",
    "FormatError",
    "PublicKey",
    "Sign1",
    "as_map",
    "decode",
    "decode_map",
    "ed25519_point_is_valid",
    "field",
    "header_alg",
    "key_fits_alg",
    "parse_cose_key",
    "parse_sign1",
    "point_is_valid",
    "public_key_from_coordinates",
    "sig_structure1",
    "uint_field",
    "verify_signature",
]

ALG_ES256 = -7
ALG_EDDSA = -8
SIGN_ALGS = frozenset((ALG_ES256, ALG_EDDSA))
TAG_SIGN1 = 18
KTY_OKP, KTY_EC2 = 1, 2
CRV_P256, CRV_ED25519 = 1, 6
HEADER_ALG, HEADER_CRIT, HEADER_KID = 1, 2, 4

T = TypeVar("T")


class Ed25519Key(NamedTuple):
    """An Ed25519 public key: its 32 bytes, which libsodium verifies with."""

    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> Ed25519Key:
        return cls(raw)


PublicKey: TypeAlias = Ed25519Key | ec.EllipticCurvePublicKey


class FormatError(ValueError):
    """The bytes are not the structure protocol §2 describes (→ `malformed_credential`)."""


class Sign1(NamedTuple):
    """A COSE_Sign1 whose shape checked out; `protected_raw` is kept as received."""

    protected_raw: bytes
    protected: Mapping[object, object]
    payload: bytes
    signature: bytes


# cbor2 turns some tags into Python objects (datetimes, Decimals, sets, bignum ints...)
# and silently unwraps others (28 shareable, 256 stringref, 55799 self-describe).  We
# want every tag kept as a plain CBORTag, so a type check downstream rejects it.
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258,
                 260, 261, 1004, 43000, 55799)


def _keep_tag(tag: int) -> Callable[[object, bool], cbor2.CBORTag]:
    return lambda value, _immutable: cbor2.CBORTag(tag, value)


_RAW_TAGS = {tag: _keep_tag(tag) for tag in _BUILTIN_TAGS}
# With immutable=True every map decodes to this frozendict type (arrays to tuples),
# inside tags or not, so one exact type check suffices.
_MAP_TYPE = type(cbor2.loads(b"\xa0", immutable=True))
_MAX_DEPTH = 16  # our deepest item is claims → cnf → COSE_Key; this bounds the rest


def decode(data: bytes) -> object:
    """Decode exactly one definite-length CBOR item; trailing bytes are an error."""
    fp = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(
            fp,
            semantic_decoders=_RAW_TAGS,
            max_depth=_MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode(immutable=True)
    except Exception as exc:  # foreign boundary: whatever the decoder raises is malformed
        raise FormatError(f"not CBOR: {exc}") from None
    if fp.tell() != len(data):  # a seekable source is left exactly after the item
        raise FormatError("trailing bytes after the CBOR item")
    return item


def as_map(item: object, what: str) -> Mapping[object, object]:
    """`item` as a CBOR map whose labels are all int or tstr (RFC 9052 / RFC 8392)."""
    if type(item) is not _MAP_TYPE:
        raise FormatError(f"{what}: not a map")
    # Exact types: a float 1.0 or a bool True would otherwise alias the int label 1.
    for label in cast("Mapping[object, object]", item):
        if type(label) is not int and type(label) is not str:
            raise FormatError(f"{what}: label {label!r} is neither int nor tstr")
    return cast("Mapping[object, object]", item)


def decode_map(data: bytes, what: str) -> Mapping[object, object]:
    return as_map(decode(data), what)


def field(item: Mapping[object, object], label: int | str, kind: type[T], what: str) -> T:
    """A required entry of exactly type `kind` (so a bool never passes for an int)."""
    value = item.get(label)
    if value is None:
        raise FormatError(f"{what} missing")
    if type(value) is not kind:
        raise FormatError(f"{what}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def uint_field(item: Mapping[object, object], label: int | str, what: str) -> int:
    value = field(item, label, int, what)
    if value < 0:
        raise FormatError(f"{what}: negative")
    return value


def parse_sign1(data: bytes) -> Sign1:
    """A COSE_Sign1, tagged 18 or untagged; the unprotected map is checked, then ignored."""
    item = decode(data)
    if type(item) is cbor2.CBORTag and item.tag == TAG_SIGN1:
        item = item.value
    if type(item) is not tuple or len(item) != 4:
        raise FormatError("COSE_Sign1: not a 4-element array")
    protected_raw, unprotected, payload, signature = item
    if type(protected_raw) is not bytes:
        raise FormatError("COSE_Sign1: protected header not a bstr")
    protected = decode_map(protected_raw, "protected header")
    as_map(unprotected, "unprotected header")
    if type(payload) is not bytes:
        raise FormatError("COSE_Sign1: payload not a bstr")
    if type(signature) is not bytes:
        raise FormatError("COSE_Sign1: signature not a bstr")
    return Sign1(protected_raw, protected, payload, signature)


def header_alg(protected: Mapping[object, object]) -> int:
    """The protected `alg`, one of ES256/EdDSA; a `crit` header is refused (we know none)."""
    if HEADER_CRIT in protected:
        raise FormatError("protected header: unsupported crit parameter")
    alg = field(protected, HEADER_ALG, int, "protected header alg")
    if alg not in SIGN_ALGS:
        raise FormatError(f"protected header alg {alg} is neither ES256 nor EdDSA")
    return alg


def sig_structure1(protected_raw: bytes, payload: bytes) -> bytes:
    """`["Signature1", protected as received, h'', payload]` — the bytes that are signed."""
    return cbor2.dumps(["Signature1", protected_raw, b"", payload])


def parse_cose_key(item: object) -> PublicKey:
    """An Ed25519 `{1: 1, -1: 6, -2: x}` or P-256 `{1: 2, -1: 1, -2: x, -3: y}` COSE_Key.

    Other parameters are ignored, except a private `d` (-4), which no phone may publish.
    """
    key = as_map(item, "COSE_Key")
    if -4 in key:
        raise FormatError("COSE_Key: carries a private key")
    kty = field(key, 1, int, "COSE_Key kty")
    crv = field(key, -1, int, "COSE_Key crv")
    x = field(key, -2, bytes, "COSE_Key x")
    if kty == KTY_OKP and crv == CRV_ED25519:
        return public_key_from_coordinates(x, None)
    if kty == KTY_EC2 and crv == CRV_P256:
        return public_key_from_coordinates(x, field(key, -3, bytes, "COSE_Key y"))
    raise FormatError(f"COSE_Key: kty {kty} crv {crv} is neither OKP Ed25519 nor EC2 P-256")


def public_key_from_coordinates(x: bytes, y: bytes | None) -> PublicKey:
    """Ed25519 from `x` (y None) or P-256 from `x`, `y` (32 bytes each; point checked)."""
    if len(x) != 32 or (y is not None and len(y) != 32):
        raise FormatError("public key coordinate is not 32 bytes")
    if y is None:
        # The point is not decoded here.  The cheap RFC 8032 encoding checks run now, so a
        # non-canonical key is malformed; the costly on-curve test is
        # ed25519_point_is_valid, and an off-curve key never verifies in libsodium anyway.
        if not _ed25519_encoding_is_canonical(x):
            raise FormatError("Ed25519 public key is not a canonical encoding")
        return Ed25519Key.from_bytes(x)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, b"\x04" + x + y)
    except ValueError:
        raise FormatError("P-256 public key is not a point on the curve") from None


# One curve object for every key: each key keeps the one it was built with, and a fresh
# one per cached device key would be one more object for the garbage collector to track.
_P256 = ec.SECP256R1()
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P


def _ed25519_encoding_is_canonical(x: bytes) -> bool:
    """y < p, and no "negative zero" x (y = ±1 with the sign bit set): RFC 8032 §5.1.3."""
    y = int.from_bytes(x, "little") & ((1 << 255) - 1)
    return y < _P and not (x[31] >> 7 and y in (1, _P - 1))


def ed25519_point_is_valid(x: bytes) -> bool:
    """Whether 32 bytes decode to an Ed25519 point (RFC 8032 §5.1.3).

    Costs ~40 µs of Python big-int work, so callers run it only where it changes an
    outcome: libsodium's verify already fails for a key that is not on the curve.
    """
    if len(x) != 32 or not _ed25519_encoding_is_canonical(x):
        return False
    y = int.from_bytes(x, "little") & ((1 << 255) - 1)
    u = (y * y - 1) % _P
    if u == 0:  # x = 0: the point (0, ±1)
        return True
    v = (_D * y * y + 1) % _P
    return _jacobi(u * v % _P, _P) == 1  # x² = u/v has a root iff u·v is a square


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


def point_is_valid(key: PublicKey) -> bool:
    """Ed25519 keys are decoded lazily (above); P-256 points were checked on load."""
    if isinstance(key, Ed25519Key):
        return ed25519_point_is_valid(key.raw)
    return True


def key_fits_alg(key: PublicKey, alg: int) -> bool:
    """ES256 needs an EC2 P-256 key, EdDSA an OKP Ed25519 key."""
    if alg == ALG_EDDSA:
        return isinstance(key, Ed25519Key)
    return alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey)


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def verify_signature(key: PublicKey, alg: int, signature: bytes, data: bytes) -> bool:
    """ES256 (raw 64-byte `r||s`) or EdDSA; a wrong length or key type is simply False.

    EdDSA is libsodium's strict verify: besides a wrong signature it refuses a
    non-canonical `S` (≥ the group order), a small-order `R` and a small-order key.
    """
    if len(signature) != 64:
        return False
    if alg == ALG_EDDSA and isinstance(key, Ed25519Key):
        try:  # what nacl.signing.VerifyKey.verify does, without an object per key
            crypto_sign_open(signature + data, key.raw)
        except nacl.exceptions.BadSignatureError:
            return False
        return True
    if alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        try:
            key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True
    return False
