"""Minimal, strict COSE_Sign1 (RFC 9052) and COSE_Key (RFC 9053) handling for ESSC1.

Only what the e-card QR needs (protocol §2): decode a COSE_Sign1 with or without CBOR
tag 18, build its `Sig_structure1`, read the `alg`/`kid` headers, turn a COSE_Key into
a verifying key, and check a signature. Which algorithms exist, their key types and
how each verifies is the registry's (`algorithms.py`); this module only looks them up.

Every shape problem raises `FormatError`; the caller maps it to `malformed_credential`.
The CBOR decoder is a foreign boundary, so *any* exception it raises is translated here.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeAlias, TypeVar, cast

import cbor2

from validator.credentials import ed25519, es256
from validator.credentials.algorithm import Algorithm
from validator.credentials.algorithms import BY_COSE_ALG, BY_COSE_KEY
from validator.credentials.ed25519 import Ed25519Key
from validator.credentials.malformed import FormatError

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "HEADER_KID",
    "Ed25519Key",
    "FormatError",
    "PublicKey",
    "Sign1",
    "as_map",
    "decode",
    "decode_map",
    "field",
    "header_alg",
    "parse_device_key",
    "parse_sign1",
    "sig_structure1",
    "uint_field",
    "verify_signature",
]

ALG_ES256 = es256.COSE_ALG
ALG_EDDSA = ed25519.COSE_ALG
TAG_SIGN1 = 18
HEADER_ALG, HEADER_CRIT, HEADER_KID = 1, 2, 4
# A verifying key of any registered algorithm (`Algorithm.key_type`).
PublicKey: TypeAlias = object

T = TypeVar("T")


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
    """The protected `alg`, a registered one; a `crit` header is refused (we know none)."""
    if HEADER_CRIT in protected:
        raise FormatError("protected header: unsupported crit parameter")
    alg = field(protected, HEADER_ALG, int, "protected header alg")
    if alg not in BY_COSE_ALG:
        raise FormatError(f"protected header alg {alg} is not a supported algorithm")
    return alg


def sig_structure1(protected_raw: bytes, payload: bytes) -> bytes:
    """`["Signature1", protected as received, h'', payload]` — the bytes that are signed."""
    return cbor2.dumps(["Signature1", protected_raw, b"", payload])


def parse_device_key(item: object) -> tuple[Algorithm, PublicKey]:
    """A COSE_Key of a registered (kty, crv), as the algorithm it fits and its key.

    Ed25519 is `{1: 1, -1: 6, -2: x}`, EC2 keys `{1: 2, -1: crv, -2: x, -3: y}`. Other
    parameters are ignored, except a private `d` (-4), which no phone may publish.
    """
    key = as_map(item, "COSE_Key")
    if -4 in key:
        raise FormatError("COSE_Key: carries a private key")
    kty = field(key, 1, int, "COSE_Key kty")
    crv = field(key, -1, int, "COSE_Key crv")
    x = field(key, -2, bytes, "COSE_Key x")
    alg = BY_COSE_KEY.get((kty, crv))
    if alg is None:
        raise FormatError(f"COSE_Key: kty {kty} crv {crv} is not a supported key type")
    y = field(key, -3, bytes, "COSE_Key y") if alg.has_y else None
    return alg, alg.load(x, y)


def verify_signature(key: PublicKey, alg: int, signature: bytes, data: bytes) -> bool:
    """Whether `signature` over `data` verifies with `key` under COSE `alg`; a wrong
    length or a key of another algorithm is simply False."""
    algorithm = BY_COSE_ALG.get(alg)
    if algorithm is None or type(key) is not algorithm.key_type:
        return False
    return algorithm.verify(key, signature, data)
