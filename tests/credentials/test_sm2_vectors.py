"""The SM2 vectors published in docs/essc-vectors.md (protocol §2.1), read from the page.

The page is what vendors test against, so the test reads it rather than a copy: the
keys and `Z_A`, the trust-list entry, each QR text and the answer it names. Each
negative code is also checked to be what the page says it is (`r = 0`, `s = n`, a cnf
point off the curve, a signature that verifies only without `Z_A` or with the empty
ID), so a vector cannot pass for the wrong reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import base45
import cbor2
import gmssl_pyx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from terminals_sim.sm2keys import ORDER, Sm2PrivateKey
from validator.credentials import sm2
from validator.credentials.essc_qr import EsscVerifier
from validator.credentials.malformed import FormatError
from validator.credentials.trust import TrustList
from validator.credentials.verified import Rejected, VerifiedCredential
from validator.reasons import Reason

PAGE = Path(__file__).resolve().parents[2] / "docs" / "essc-vectors.md"
SECTION = PAGE.read_text("utf-8").split("# SM2 vectors (protocol §2.1)", 1)[1]
INPUTS = dict(re.findall(r"^\| ([^|]+?) \| `([0-9a-f]+)` \|$", SECTION, re.M))
VECTORS = {name: (answer, qr) for name, answer, qr in re.findall(
    r"^#### `([a-z0-9-]+)`: `([a-z_]+)`\n.*?\n    (ESSC1:[^\n]+)$", SECTION, re.M | re.S)}
NOW = 1795000005.5
DEFAULT_ID = b"1234567812345678"


def _sections(qr: str) -> tuple[list[object], list[object]]:
    """(level 2, level 1) COSE_Sign1 arrays of a QR."""
    outer = cbor2.loads(base45.b45decode(qr.removeprefix("ESSC1:"))).value
    return outer, cbor2.loads(cbor2.loads(outer[2])[1]).value


def _verifier() -> EsscVerifier:
    jwks = json.loads(re.search(r"```json\n(.*?)\n```", SECTION, re.S).group(1))  # type: ignore[union-attr]
    return EsscVerifier(TrustList.from_jwks(jwks))


def _private(who: str) -> Sm2PrivateKey:
    return Sm2PrivateKey.from_bytes(bytes.fromhex(INPUTS[f"{who} private scalar `d` (TEST ONLY)"]))


def _tbs(sign1: list[object]) -> bytes:
    return cbor2.dumps(["Signature1", sign1[0], b"", sign1[2]])


def test_the_page_has_every_vector() -> None:
    assert set(VECTORS) == {"sm2-good", "sm2-r-zero", "sm2-s-n", "sm2-off-curve",
                            "sm2-no-za-device", "sm2-no-za-issuer", "sm2-empty-id-device"}
    assert len(INPUTS) == 11


def test_the_keys_and_za_are_what_the_page_says() -> None:
    for who in ("issuer", "device"):
        key = _private(who)
        assert key.public.x.hex() == INPUTS[f"{who} public `x`"]
        assert key.public.y.hex() == INPUTS[f"{who} public `y`"]
        assert key.za(DEFAULT_ID).hex() == INPUTS[f"{who} `Z_A` (ID `1234567812345678`)"]
    # the GM/T 0003.5 example key's Z_A, as the standard prints it
    assert INPUTS["issuer `Z_A` (ID `1234567812345678`)"] == \
        "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"


def test_the_good_vector_verifies_with_its_claims() -> None:
    verifier = _verifier()
    assert VECTORS["sm2-good"][0] == "accept"
    qr = VECTORS["sm2-good"][1]
    assert verifier.verify(qr, NOW) == VerifiedCredential(
        kind="essc_qr", holder_ref="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        birth_date=dt.date(1950, 1, 1), region="369900", card_no="B12345678",
        nonce=bytes.fromhex(INPUTS["nonce"]))
    for now, reason in ((1795000061, Reason.QR_EXPIRED), (1797465601, Reason.CREDENTIAL_EXPIRED)):
        with pytest.raises(Rejected) as info:
            verifier.verify(qr, now)
        assert info.value.reason is reason
    # GmSSL, which computes Z_A itself, accepts both of its signatures too
    outer, inner = _sections(qr)
    for sign1, who in ((inner, "issuer"), (outer, "device")):
        raw = sign1[3]
        assert isinstance(raw, bytes)
        public = bytes.fromhex(INPUTS[f"{who} public `x`"] + INPUTS[f"{who} public `y`"])
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        assert gmssl_pyx.sm2_verify(public, _tbs(sign1), der, signer_id=DEFAULT_ID)


@pytest.mark.parametrize("name", ["sm2-r-zero", "sm2-s-n", "sm2-off-curve", "sm2-no-za-device",
                                  "sm2-no-za-issuer", "sm2-empty-id-device"])
def test_each_negative_vector_gets_its_reason(name: str) -> None:
    answer, qr = VECTORS[name]
    with pytest.raises(Rejected) as info:
        _verifier().verify(qr, NOW)
    assert info.value.reason is Reason(answer)


def _signature_verifies_over(sign1: list[object], key: str, digest: bytes) -> bool:
    raw = sign1[3]
    assert isinstance(raw, bytes)
    public = bytes.fromhex(INPUTS[f"{key} public `x`"] + INPUTS[f"{key} public `y`"])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return bool(gmssl_pyx.sm2_verify_sm3_digest(public, digest, der))


def test_each_negative_vector_is_what_the_page_says() -> None:
    outer, _ = _sections(VECTORS["sm2-r-zero"][1])
    assert isinstance(outer[3], bytes) and outer[3][:32] == bytes(32)
    outer, _ = _sections(VECTORS["sm2-s-n"][1])
    assert isinstance(outer[3], bytes) and int.from_bytes(outer[3][32:], "big") == ORDER
    _, inner = _sections(VECTORS["sm2-off-curve"][1])
    assert isinstance(inner[2], bytes)
    cnf = cbor2.loads(inner[2])[8][1]
    with pytest.raises(FormatError):
        sm2.load(cnf[-2], cnf[-3])
    outer, _ = _sections(VECTORS["sm2-no-za-device"][1])
    assert _signature_verifies_over(outer, "device", gmssl_pyx.sm3_hash(_tbs(outer)))
    _, inner = _sections(VECTORS["sm2-no-za-issuer"][1])
    assert _signature_verifies_over(inner, "issuer", gmssl_pyx.sm3_hash(_tbs(inner)))
    outer, _ = _sections(VECTORS["sm2-empty-id-device"][1])
    empty_za = _private("device").za(b"")
    assert _signature_verifies_over(outer, "device", gmssl_pyx.sm3_hash(empty_za + _tbs(outer)))


def test_the_signed_bytes_and_e_of_level_1_are_the_good_vectors() -> None:
    block = re.search(r"the issuer signs.*?:\n\n((?:    [0-9a-f]+\n)+)", SECTION, re.S)
    e = re.search(r"with the issuer's `Z_A`:\n\n    ([0-9a-f]{64})\n", SECTION)
    assert block is not None and e is not None
    _, inner = _sections(VECTORS["sm2-good"][1])
    message = bytes.fromhex("".join(block.group(1).split()))
    assert message == _tbs(inner)
    assert gmssl_pyx.sm3_hash(_private("issuer").za(DEFAULT_ID) + message).hex() == e.group(1)
