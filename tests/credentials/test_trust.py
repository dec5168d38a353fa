"""The issuer trust list (protocol §6): JWKS parsing, candidate selection, signatures."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from validator.credentials import cose, ed25519
from validator.credentials.trust import TrustedKey, TrustList, TrustListError, public_jwk

NOW = 1_795_000_000
KID = bytes.fromhex("0011223344556677")
ED_KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
EC_KEY = ec.derive_private_key(12345, ec.SECP256R1())


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ed_jwk(**changes: Any) -> dict[str, Any]:
    return public_jwk(ED_KEY.public_key(), KID, "EdDSA", "CN-369900-ESSC") | changes


def ec_jwk(**changes: Any) -> dict[str, Any]:
    return public_jwk(EC_KEY.public_key(), KID, "ES256", "CN-369900-ESSC") | changes


def es256_raw(message: bytes) -> bytes:
    r, s = decode_dss_signature(EC_KEY.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_public_jwk_round_trips_both_algs() -> None:
    ed, es = ed_jwk(nbf=NOW, exp=NOW + 10), ec_jwk()
    assert ed == {"kty": "OKP", "crv": "Ed25519", "x": ed["x"], "kid": b64(KID),
                  "alg": "EdDSA", "iss": "CN-369900-ESSC", "nbf": NOW, "exp": NOW + 10}
    assert set(es) == {"kty", "crv", "x", "y", "kid", "alg", "iss"}
    trust = TrustList.from_jwks({"keys": [ed, es]})
    assert len(trust) == 2
    (eddsa,) = trust.candidates(KID, cose.ALG_EDDSA, NOW)
    (es256,) = trust.candidates(KID, cose.ALG_ES256, NOW)
    assert (eddsa.kid, eddsa.iss, eddsa.nbf, eddsa.exp) == (KID, "CN-369900-ESSC", NOW, NOW + 10)
    assert eddsa.verify(ED_KEY.sign(b"data"), b"data")
    assert es256.verify(es256_raw(b"data"), b"data")


def test_public_jwk_refuses_an_alg_that_does_not_fit_the_key() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        public_jwk(ED_KEY.public_key(), KID, "ES256", "x")
    with pytest.raises(ValueError, match="does not fit"):
        public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), KID, "ES256", "x")
    with pytest.raises(ValueError, match="8 bytes"):
        public_jwk(ED_KEY.public_key(), KID[:7], "EdDSA", "x")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "'keys' array"),
        ({"keys": {}}, "'keys' array"),
        ({"keys": ["x"]}, r"keys\[0\]: not an object"),
        ({"keys": [ed_jwk(), ed_jwk(alg="RS256")]}, r"keys\[1\]\.alg"),
        ({"keys": [ed_jwk(alg=None)]}, r"keys\[0\]\.alg"),
        ({"keys": [ed_jwk(kty="EC")]}, r"keys\[0\]\.kty"),
        ({"keys": [ed_jwk(crv="X25519")]}, r"keys\[0\]\.crv"),
        ({"keys": [ec_jwk(crv="P-384")]}, r"keys\[0\]\.crv"),
        ({"keys": [ed_jwk(kid=b64(KID[:7]))]}, r"keys\[0\]\.kid: 7 bytes"),
        ({"keys": [ed_jwk(kid=b64(KID) + "==")]}, r"keys\[0\]\.kid: not unpadded"),
        ({"keys": [ed_jwk(kid="ABEiM0RVZn+")]}, r"keys\[0\]\.kid: not unpadded"),
        ({"keys": [ed_jwk(kid="ABEiM0RVZnd")]}, r"keys\[0\]\.kid: non-canonical"),
        ({"keys": [ed_jwk(kid=12)]}, r"keys\[0\]\.kid: missing or not a string"),
        ({"keys": [ed_jwk(iss=None)]}, r"keys\[0\]\.iss"),
        ({"keys": [ed_jwk(iss="")]}, r"keys\[0\]\.iss: empty"),
        ({"keys": [ed_jwk(nbf=True)]}, r"keys\[0\]\.nbf"),
        ({"keys": [ed_jwk(nbf=1.5)]}, r"keys\[0\]\.nbf"),
        ({"keys": [ed_jwk(exp="1795000000")]}, r"keys\[0\]\.exp"),
        ({"keys": [ed_jwk(exp=-1)]}, r"keys\[0\]\.exp"),
        ({"keys": [ed_jwk(nbf=NOW, exp=NOW - 1)]}, r"keys\[0\]\.exp: before nbf"),
        ({"keys": [ed_jwk(x=b64(bytes(31)))]}, r"keys\[0\]\.x: .*32 bytes"),
        ({"keys": [ed_jwk(x=b64(bytes([5]) * 32))]}, r"keys\[0\]\.x: not an Ed25519 point"),
        ({"keys": [ec_jwk(y=None)]}, r"keys\[0\]\.y"),
        ({"keys": [ec_jwk(y=b64(bytes(32)))]}, r"keys\[0\]\.x: P-256 .* not a point"),
        ({"keys": [ed_jwk(d=b64(bytes(32)))]}, r"keys\[0\]\.d: private key"),
    ],
)
def test_from_jwks_names_the_key_and_field_at_fault(doc: object, message: str) -> None:
    with pytest.raises(TrustListError, match=message):
        TrustList.from_jwks(doc)


def test_unknown_members_are_ignored_and_an_empty_list_is_valid() -> None:
    trust = TrustList.from_jwks({"keys": [ed_jwk(use="sig", key_ops=["verify"])], "x": 1})
    assert len(trust.candidates(KID, cose.ALG_EDDSA, NOW)) == 1
    assert len(TrustList.from_jwks({"keys": []})) == 0


def test_candidates_match_kid_alg_and_window_inclusively() -> None:
    trust = TrustList.from_jwks({"keys": [
        ed_jwk(nbf=NOW, exp=NOW + 10),
        ed_jwk(kid=b64(b"otherkid")),
        ec_jwk(),
    ]})
    assert len(trust.candidates(KID, cose.ALG_EDDSA, NOW)) == 1
    assert len(trust.candidates(KID, cose.ALG_EDDSA, NOW + 10)) == 1
    assert trust.candidates(KID, cose.ALG_EDDSA, NOW - 1) == ()
    assert trust.candidates(KID, cose.ALG_EDDSA, NOW + 11) == ()
    assert len(trust.candidates(b"otherkid", cose.ALG_EDDSA, 0)) == 1
    assert len(trust.candidates(KID, cose.ALG_ES256, 0)) == 1
    assert trust.candidates(b"nokid---", cose.ALG_EDDSA, NOW) == ()


def test_keys_sharing_a_kid_are_all_candidates_in_order() -> None:
    second = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
    trust = TrustList.from_jwks({"keys": [
        ed_jwk(), public_jwk(second.public_key(), KID, "EdDSA", "CN-369900-ESSC"),
    ]})
    first_key, second_key = trust.candidates(KID, cose.ALG_EDDSA, NOW)
    signature = second.sign(b"m")
    assert not first_key.verify(signature, b"m")
    assert second_key.verify(signature, b"m")


def test_an_eddsa_key_is_its_raw_bytes_for_libsodium() -> None:
    [key] = TrustList.from_jwks({"keys": [ed_jwk()]}).candidates(KID, cose.ALG_EDDSA, NOW)
    assert isinstance(key.public_key, cose.Ed25519Key)
    assert key.public_key.raw == ED_KEY.public_key().public_bytes_raw()
    assert key.verify(ED_KEY.sign(b"m"), b"m")


def test_verify_is_false_for_wrong_length_der_or_tampered_signatures() -> None:
    es = TrustedKey(KID, cose.ALG_ES256, "i", EC_KEY.public_key())
    ed_raw = ED_KEY.public_key().public_bytes_raw()
    ed = TrustedKey(KID, cose.ALG_EDDSA, "i", ed25519.load(ed_raw, None))
    raw = es256_raw(b"m")
    assert es.verify(raw, b"m")
    assert not es.verify(raw, b"n")
    assert not es.verify(raw[:63], b"m")
    assert not es.verify(EC_KEY.sign(b"m", ec.ECDSA(hashes.SHA256())), b"m")  # DER, not raw
    assert not es.verify(bytes(64), b"m")  # r = s = 0
    assert ed.verify(ED_KEY.sign(b"m"), b"m")
    assert not ed.verify(ED_KEY.sign(b"m"), b"n")
    assert not ed.verify(ED_KEY.sign(b"m")[:63], b"m")
    assert not ed.verify(ED_KEY.sign(b"m") + b"\0", b"m")
    # A key only verifies its own algorithm.
    assert not TrustedKey(KID, cose.ALG_EDDSA, "i", EC_KEY.public_key()).verify(raw, b"m")
    assert not TrustedKey(KID, cose.ALG_ES256, "i", ed.public_key).verify(raw, b"m")


def test_a_small_order_eddsa_key_loads_but_verifies_nothing() -> None:
    """The identity point is a valid encoding, so the list loads; but with it `R = identity,
    S = 0` would verify any message (OpenSSL accepts it), and libsodium refuses it."""
    identity = (1).to_bytes(32, "little")
    [key] = TrustList.from_jwks({"keys": [ed_jwk(x=b64(identity))]}).candidates(
        KID, cose.ALG_EDDSA, NOW)
    assert not key.verify(identity + bytes(32), b"m")
