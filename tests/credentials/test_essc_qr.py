"""E-card QR (protocol §2): every reason, the check order, the level-1 cache, a fuzz
test, and the conformance vector published in docs/essc-vectors.md.

QRs come from the simulator's encoder (terminals_sim.ecard), which shares no code with
the validator; keys are generated per test, except the vector's fixed seeds.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminals_sim.ecard import (
    Alg,
    Issuer,
    Phone,
    PrivateKey,
    claims_map,
    cose_key,
    generate_key,
    load_issuers,
    sign1,
    tampered,
    to_qr,
)
from validator.credentials import cose, ed25519
from validator.credentials.essc_qr import EsscVerifier, b45decode
from validator.credentials.trust import TrustList, public_jwk
from validator.credentials.verified import Rejected, VerifiedCredential
from validator.reasons import Reason

NOW = 1_795_000_000
SUB = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
ALGS: tuple[Alg, ...] = ("ES256", "EdDSA")
Claims = dict[object, object]


def trust_of(*issuers: Issuer, **window: int) -> TrustList:
    return TrustList.from_jwks({"keys": [
        public_jwk(i.private_key.public_key(), i.kid, i.alg, i.iss, **window) for i in issuers
    ]})


@dataclass
class Env:
    """One issuer (trusted unless told otherwise), one phone, and a verifier."""

    issuer: Issuer
    device: PrivateKey
    device_alg: Alg
    verifier: EsscVerifier

    def claims(self, **changes: object) -> Claims:
        claims = claims_map(iss=self.issuer.iss, sub=SUB, birth_date=19500101,
                            card_no="A12345678", region="369900",
                            device_public_key=self.device.public_key(),
                            iat=NOW - 86400, exp=NOW + 86400)
        merged = claims | {_LABELS.get(k, k): v for k, v in changes.items()}
        return {k: v for k, v in merged.items() if v is not MISSING}

    def level1(self, claims: Claims | None = None, *, tag: bool = True) -> bytes:
        return self.issuer.sign(self.claims() if claims is None else claims, tag=tag)

    def phone(self, level1: bytes | None = None) -> Phone:
        return Phone(self.level1() if level1 is None else level1, self.device, self.device_alg)

    def qr(self, gen_time: int = NOW, **claim_changes: object) -> str:
        return self.phone(self.level1(self.claims(**claim_changes))).qr(gen_time)

    def body(self, changes: dict[object, object]) -> str:
        """A QR whose level-2 body {1: level1, 2: gen_time, 3: nonce} is edited."""
        body = {1: self.level1(), 2: NOW, 3: bytes(12)} | changes
        body = {k: v for k, v in body.items() if v is not MISSING}
        return to_qr(sign1(self.device, cbor2.dumps(body)))

    def reason(self, qr: str, now: float = NOW) -> Reason:
        with pytest.raises(Rejected) as info:
            self.verifier.verify(qr, now)
        return info.value.reason


_LABELS: dict[str, object] = {"iss": 1, "sub": 2, "exp": 4, "iat": 6, "cnf": 8}
MISSING = object()  # a claim value that means "drop this claim"


def make_env(issuer_alg: Alg = "EdDSA", device_alg: Alg = "EdDSA", trusted: bool = True,
             **window: int) -> Env:
    issuer = Issuer.generate(issuer_alg)
    trust = trust_of(issuer, **window) if trusted else TrustList([])
    return Env(issuer, generate_key(device_alg), device_alg, EsscVerifier(trust))


@pytest.fixture(params=ALGS)
def env(request: pytest.FixtureRequest) -> Env:
    """Runs a test once with an ES256 issuer and phone, once with EdDSA."""
    return make_env(request.param, request.param)


# --- accepted -------------------------------------------------------------------------


@pytest.mark.parametrize("device_alg", ALGS)
@pytest.mark.parametrize("issuer_alg", ALGS)
def test_accepts_every_alg_pair(issuer_alg: Alg, device_alg: Alg) -> None:
    env = make_env(issuer_alg, device_alg)
    result = env.verifier.verify(env.phone().qr(NOW, bytes(range(8))), NOW)
    assert result == VerifiedCredential(
        kind="essc_qr", holder_ref=SUB.hex(), birth_date=dt.date(1950, 1, 1),
        region="369900", card_no="A12345678", nonce=bytes(range(8)),
    )


@pytest.mark.parametrize("outer_tag", [True, False])
@pytest.mark.parametrize("inner_tag", [True, False])
def test_tag_18_is_optional_on_each_level(env: Env, inner_tag: bool, outer_tag: bool) -> None:
    qr = env.phone(env.level1(tag=inner_tag)).qr(NOW, tag=outer_tag)
    assert env.verifier.verify(qr, NOW).holder_ref == SUB.hex()


def test_unknown_claims_body_entries_and_unprotected_headers_are_ignored(env: Env) -> None:
    claims = env.claims(extra=[1, {"a": 2.5}], **{"99": cbor2.CBORTag(1, 0)}) | {-70000: None}
    level1 = sign1(env.issuer.private_key, cbor2.dumps(claims),
                   {1: cose.ALG_ES256 if env.issuer.alg == "ES256" else cose.ALG_EDDSA,
                    4: env.issuer.kid, 99: "x"}, unprotected={4: b"ignored", 1: -35})
    body = {1: level1, 2: NOW, 3: bytes(16), 4: "future"}
    qr = to_qr(sign1(env.device, cbor2.dumps(body), unprotected={"note": [1, 2]}))
    assert env.verifier.verify(qr, NOW).card_no == "A12345678"


def test_time_bounds_are_inclusive_and_now_is_floored(env: Env) -> None:
    assert env.verifier.verify(env.qr(exp=NOW), NOW)
    assert env.verifier.verify(env.qr(iat=NOW + 300), NOW)
    assert env.verifier.verify(env.qr(gen_time=NOW - 60), NOW + 0.999)
    assert env.verifier.verify(env.qr(gen_time=NOW + 30), NOW)
    assert env.reason(env.qr(gen_time=NOW + 31), NOW + 0.999) == Reason.QR_NOT_YET_VALID


def test_trust_window_bounds_are_inclusive() -> None:
    env = make_env(nbf=NOW, exp=NOW)
    assert env.verifier.verify(env.qr(gen_time=NOW), NOW + 0.5)
    assert env.reason(env.qr(gen_time=NOW), NOW - 1) == Reason.UNKNOWN_KEY
    assert env.reason(env.qr(gen_time=NOW), NOW + 1) == Reason.UNKNOWN_KEY


# --- step 1 ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "essc1:", "ESSC2:", " ESSC1:", "HC1:", "ESSC1"])
def test_without_the_exact_prefix_is_unsupported(env: Env, prefix: str) -> None:
    assert env.reason(prefix + env.qr().removeprefix("ESSC1:")) == Reason.UNSUPPORTED_CREDENTIAL


@pytest.mark.parametrize("text", [
    "", "a" * 3, "ÄBC", "GGW", "ZZ", "0", "00\n", "00 ", "%%%", "FGW", "0000",
    "ESSC1:" + "0" * 30,
])
def test_bad_base45_or_cbor_is_malformed(env: Env, text: str) -> None:
    assert env.reason("ESSC1:" + text) == Reason.MALFORMED_CREDENTIAL


def test_a_valid_qr_with_a_trailing_newline_or_byte_is_malformed(env: Env) -> None:
    qr = env.qr()
    assert env.reason(qr + "\n") == Reason.MALFORMED_CREDENTIAL
    assert env.reason(to_qr(b45decode(qr[6:]) + b"\0")) == Reason.MALFORMED_CREDENTIAL


def _outer(env: Env, mutate: Callable[[list[Any]], object]) -> str:
    parts = list(cbor2.loads(env.phone().level2(NOW, tag=False)))
    return to_qr(cbor2.dumps(mutate(parts)))


@pytest.mark.parametrize("mutate", [
    lambda p: p[:3],
    lambda p: [*p, b""],
    lambda p: dict(enumerate(p)),
    lambda p: cbor2.CBORTag(19, p),
    lambda p: cbor2.CBORTag(18, cbor2.CBORTag(18, p)),
    lambda p: cbor2.CBORTag(55799, cbor2.CBORTag(18, p)),
    lambda p: [cbor2.loads(p[0]), *p[1:]],  # protected as a map, not a bstr
    lambda p: [cbor2.dumps([1, -7]), *p[1:]],  # protected bstr holding an array
    lambda p: [b"", *p[1:]],  # empty protected: no alg
    lambda p: [p[0], [], *p[2:]],  # unprotected not a map
    lambda p: [*p[:2], None, p[3]],  # detached payload
    lambda p: [*p[:3], p[3].hex()],  # signature as tstr
    lambda p: [*p[:2], cbor2.loads(p[2]), p[3]],  # payload map, not a bstr
], ids=["3-array", "5-array", "map", "tag19", "tag18-twice", "self-described", "protected-map",
        "protected-array", "protected-empty", "unprotected-array", "detached", "sig-tstr",
        "payload-map"])
def test_cose_shape_errors_are_malformed(env: Env, mutate: Callable[[list[Any]], object]) -> None:
    assert env.reason(_outer(env, mutate)) == Reason.MALFORMED_CREDENTIAL


def test_indefinite_lengths_and_duplicate_keys_are_malformed(env: Env) -> None:
    raw = env.phone().level2(NOW, tag=False)
    assert raw[0] == 0x84
    assert env.reason(to_qr(b"\x9f" + raw[1:] + b"\xff")) == Reason.MALFORMED_CREDENTIAL
    # {1: inner, 2: gen, 3: nonce, 2: gen} — cbor2 cannot encode a duplicate, so splice one.
    body = cbor2.dumps({1: env.level1(), 2: NOW, 3: bytes(8)})
    duplicate = b"\xa4" + body[1:] + cbor2.dumps(2) + cbor2.dumps(NOW)
    assert env.reason(to_qr(sign1(env.device, duplicate))) == Reason.MALFORMED_CREDENTIAL


@pytest.mark.parametrize("protected", [
    {1: -35}, {1: -7.0}, {1: "ES256"}, {1: True}, {}, {1: -8, 2: [99]}, {1.0: -8},
])
def test_bad_outer_headers_are_malformed(env: Env, protected: dict[Any, object]) -> None:
    qr = to_qr(sign1(env.device, cbor2.dumps({1: env.level1(), 2: NOW, 3: bytes(8)}), protected))
    assert env.reason(qr) == Reason.MALFORMED_CREDENTIAL


@pytest.mark.parametrize("protected", [
    {1: -35}, {1: None}, {4: b"12345678"}, {1: -8, 4: b"1234567"}, {1: -8, 4: "12345678"},
    {1: -8, 4: b"123456789"},
])
def test_bad_inner_headers_are_malformed_not_unknown_key(env: Env, protected: dict[int, object]
                                                         ) -> None:
    level1 = env.issuer.sign(env.claims(), protected=protected)
    assert env.reason(env.phone(level1).qr(NOW)) == Reason.MALFORMED_CREDENTIAL


@pytest.mark.parametrize("changes", [
    {1: MISSING}, {2: MISSING}, {3: MISSING},
    {2: True}, {2: -1}, {2: float(NOW)}, {2: str(NOW)},
    {2: cbor2.CBORTag(1, NOW)}, {2: cbor2.CBORTag(2, NOW.to_bytes(4, "big"))},
    {2: cbor2.CBORTag(28, NOW)}, {2: cbor2.CBORTag(55799, NOW)}, {2: cbor2.CBORTag(256, NOW)},
    {3: bytes(7)}, {3: bytes(17)}, {3: "n" * 12}, {1: "not bytes"}, {1: b"\xa0"},
], ids=repr)
def test_bad_level2_bodies_are_malformed(env: Env, changes: dict[object, object]) -> None:
    assert env.reason(env.body(changes)) == Reason.MALFORMED_CREDENTIAL


def test_bool_and_float_labels_do_not_alias_int_labels(env: Env) -> None:
    # True == 1.0 == 1 in Python, so a careless lookup would find label 1 here.
    for label in (True, 1.0):
        body = {label: env.level1(), 2: NOW, 3: bytes(8)}
        assert env.reason(to_qr(sign1(env.device, cbor2.dumps(body)))) == (
            Reason.MALFORMED_CREDENTIAL)
        claims = env.claims()
        claims[label] = claims.pop(1)
        assert env.reason(env.phone(env.level1(claims)).qr(NOW)) == Reason.MALFORMED_CREDENTIAL


def _p256_not_on_curve() -> dict[int, object]:
    return {1: 2, -1: 1, -2: bytes(31) + b"\1", -3: bytes(31) + b"\1"}


BAD_CLAIMS: dict[str, dict[str, object]] = {
    "iss-bytes": {"iss": b"CN"}, "sub-15": {"sub": SUB[:15]}, "sub-17": {"sub": SUB + b"!"},
    "sub-str": {"sub": SUB.hex()}, "exp-bool": {"exp": True}, "exp-negative": {"exp": -1},
    "exp-float": {"exp": NOW + 86400.0}, "exp-datetime-tag": {"exp": cbor2.CBORTag(1, NOW)},
    "exp-bignum": {"exp": 2**64}, "iat-bool": {"iat": False}, "iat-str": {"iat": "0"},
    "bd-30-feb": {"bd": 20230230}, "bd-str": {"bd": "19500101"}, "bd-7-digits": {"bd": 1950101},
    "bd-month-13": {"bd": 19501301}, "cn-lower": {"cn": "a12345678"}, "cn-8": {"cn": "A1234567"},
    "cn-10": {"cn": "A123456789"}, "cn-newline": {"cn": "A1234567\n"}, "cn-int": {"cn": 123456789},
    "rg-5": {"rg": "36990"}, "rg-fullwidth": {"rg": "３６９９００"}, "rg-int": {"rg": 369900},
    "rg-arabic-indic": {"rg": "٣٦٩٩٠٠"}, "cnf-not-map": {"cnf": [1]}, "cnf-no-key": {"cnf": {2: 1}},
    "key-kty-3": {"cnf": {1: {1: 3, -1: 6, -2: bytes(32)}}},
    "key-okp-p256": {"cnf": {1: {1: 1, -1: 1, -2: bytes(32)}}},
    "key-ec2-ed25519": {"cnf": {1: {1: 2, -1: 6, -2: bytes(32), -3: bytes(32)}}},
    "key-x-31": {"cnf": {1: {1: 1, -1: 6, -2: bytes(31)}}},
    "key-x-str": {"cnf": {1: {1: 1, -1: 6, -2: "x" * 32}}},
    "key-no-y": {"cnf": {1: {1: 2, -1: 1, -2: bytes(32)}}},
    "key-compressed-y": {"cnf": {1: {1: 2, -1: 1, -2: bytes(32), -3: True}}},
    "key-p256-off-curve": {"cnf": {1: _p256_not_on_curve()}},
    "key-ed25519-y-over-p": {"cnf": {1: {1: 1, -1: 6, -2: b"\xff" * 31 + b"\x7f"}}},
    "key-ed25519-negative-zero": {"cnf": {1: {1: 1, -1: 6, -2: b"\1" + bytes(30) + b"\x80"}}},
    "key-kty-bool": {"cnf": {1: {1: True, -1: 6, -2: bytes(32)}}},
}


@pytest.mark.parametrize("changes", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_bad_claims_are_malformed(env: Env, changes: dict[str, object]) -> None:
    assert env.reason(env.phone(env.level1(env.claims(**changes))).qr(NOW)) == (
        Reason.MALFORMED_CREDENTIAL)


@pytest.mark.parametrize("claim", ["iss", "sub", "exp", "iat", "cnf", "bd", "cn", "rg"])
def test_every_claim_is_required(env: Env, claim: str) -> None:
    claims = env.claims(**{claim: MISSING})
    assert env.reason(env.phone(env.level1(claims)).qr(NOW)) == Reason.MALFORMED_CREDENTIAL


def test_a_device_key_carrying_its_private_part_is_malformed(env: Env) -> None:
    key = cose_key(env.device.public_key()) | {-4: bytes(32)}
    assert env.reason(env.qr(cnf={1: key})) == Reason.MALFORMED_CREDENTIAL


def _off_curve_ed25519() -> bytes:
    """A canonical 32-byte string that is not an Ed25519 point."""
    return next(x for i in range(1, 127) if not ed25519.raw_point_is_valid(x := bytes([i]) * 32))


def test_an_off_curve_ed25519_device_key_is_malformed_even_behind_later_failures() -> None:
    env = make_env("EdDSA", "EdDSA")
    bad_key = {1: {1: 1, -1: 6, -2: _off_curve_ed25519()}}
    assert env.reason(env.qr(cnf=bad_key)) == Reason.MALFORMED_CREDENTIAL
    assert env.reason(env.qr(cnf=bad_key, exp=NOW - 1)) == Reason.MALFORMED_CREDENTIAL
    untrusted = make_env(trusted=False)
    assert untrusted.reason(untrusted.qr(cnf=bad_key)) == Reason.MALFORMED_CREDENTIAL


@pytest.mark.parametrize("tag", [True, False])
def test_a_stripped_level_2_is_never_accepted(env: Env, tag: bool) -> None:
    assert env.reason(to_qr(env.level1(tag=tag))) == Reason.MALFORMED_CREDENTIAL


# --- steps 2–6 ------------------------------------------------------------------------


def test_unknown_kid_alg_or_window_is_unknown_key() -> None:
    assert make_env(trusted=False).reason(make_env().qr()) == Reason.UNKNOWN_KEY
    env = make_env("EdDSA")
    impostor = Issuer(generate_key("ES256"), env.issuer.kid, env.issuer.iss, "ES256")
    assert env.reason(Env(impostor, env.device, "EdDSA", env.verifier).qr()) == Reason.UNKNOWN_KEY
    for env in (make_env(nbf=NOW + 1), make_env(exp=NOW - 1)):
        assert env.reason(env.qr()) == Reason.UNKNOWN_KEY


def test_inner_signature_errors_are_bad_signature(env: Env) -> None:
    assert env.reason(env.phone(tampered(env.level1())).qr(NOW)) == Reason.BAD_SIGNATURE
    forger = Issuer(generate_key(env.issuer.alg), env.issuer.kid, "forger", env.issuer.alg)
    forged = Env(forger, env.device, env.device_alg, env.verifier)
    assert env.reason(forged.qr()) == Reason.BAD_SIGNATURE
    parts = list(cbor2.loads(env.level1(tag=False)))
    for signature in (b"", parts[3][:63], parts[3] + b"\0"):
        level1 = cbor2.dumps([*parts[:3], signature])
        assert env.reason(env.phone(level1).qr(NOW)) == Reason.BAD_SIGNATURE


@pytest.mark.parametrize("alg", ALGS)
def test_two_keys_share_a_kid_and_only_the_second_verifies(alg: Alg) -> None:
    env = make_env(alg, alg)
    rolled = Issuer(generate_key(alg), env.issuer.kid, env.issuer.iss, alg)
    env.verifier = EsscVerifier(trust_of(rolled, env.issuer))
    assert env.verifier.verify(env.qr(), NOW).holder_ref == SUB.hex()


def test_credential_validity(env: Env) -> None:
    assert env.reason(env.qr(exp=NOW - 1)) == Reason.CREDENTIAL_EXPIRED
    assert env.reason(env.qr(iat=NOW + 301)) == Reason.CREDENTIAL_NOT_YET_VALID
    both = env.qr(exp=NOW - 1, iat=NOW + 301)
    assert env.reason(both) == Reason.CREDENTIAL_EXPIRED


@pytest.mark.parametrize(("issuer_alg", "device_alg", "header"), [
    ("EdDSA", "EdDSA", cose.ALG_ES256), ("ES256", "ES256", cose.ALG_EDDSA),
    ("ES256", "EdDSA", cose.ALG_ES256), ("EdDSA", "ES256", cose.ALG_EDDSA),
])
def test_outer_alg_must_fit_the_cnf_key(issuer_alg: Alg, device_alg: Alg, header: int) -> None:
    env = make_env(issuer_alg, device_alg)
    lying = to_qr(env.phone().level2(NOW, protected={1: header}))
    assert env.reason(lying) == Reason.MALFORMED_CREDENTIAL


def test_outer_signature_errors_are_bad_signature(env: Env) -> None:
    assert env.reason(to_qr(tampered(env.phone().level2(NOW)))) == Reason.BAD_SIGNATURE
    stolen = Phone(env.level1(), generate_key(env.device_alg), env.device_alg)
    assert env.reason(stolen.qr(NOW)) == Reason.BAD_SIGNATURE


# --- EdDSA through libsodium ----------------------------------------------------------

ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493  # L, the group order
ED25519_IDENTITY = (1).to_bytes(32, "little")  # y = 1: a valid point of order 1


def _with_signature(sign1_bytes: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """That COSE_Sign1 (tagged) re-encoded untagged with `change(signature)` in its place."""
    protected, unprotected, payload, signature = cbor2.loads(sign1_bytes).value
    return cbor2.dumps([protected, unprotected, payload, change(signature)])


def _on_level(env: Env, level: int, change: Callable[[bytes], bytes]) -> str:
    """A QR whose level-1 or level-2 signature is `change`d (the other stays good)."""
    if level == 1:
        return env.phone(_with_signature(env.level1(), change)).qr(NOW)
    return to_qr(_with_signature(env.phone().level2(NOW), change))


def _s_plus_order(signature: bytes) -> bytes:
    """`R || S+L`: the same S modulo L, so a verifier that skips the S < L check takes it."""
    s = int.from_bytes(signature[32:], "little") + ED25519_ORDER
    return signature[:32] + s.to_bytes(32, "little")


def test_ed25519_keys_verify_through_libsodium() -> None:
    env = make_env("EdDSA", "EdDSA")
    [issuer_key] = trust_of(env.issuer).candidates(env.issuer.kid, cose.ALG_EDDSA, NOW)
    _, device_key = cose.parse_device_key(
        cose.decode(cbor2.dumps(cose_key(env.device.public_key()))))
    for key in (issuer_key.public_key, device_key):
        assert isinstance(key, cose.Ed25519Key)  # verified with crypto_sign_open
    assert env.verifier.verify(env.qr(), NOW).holder_ref == SUB.hex()


@pytest.mark.parametrize("bit", [0, 255, 256, 511])  # R's first and sign bit, S's first and top
@pytest.mark.parametrize("level", [1, 2])
def test_a_flipped_bit_in_an_ed25519_signature_is_bad_signature(level: int, bit: int) -> None:
    env = make_env("EdDSA", "EdDSA")

    def flip(signature: bytes) -> bytes:
        return (int.from_bytes(signature, "little") ^ 1 << bit).to_bytes(64, "little")

    assert env.reason(_on_level(env, level, flip)) == Reason.BAD_SIGNATURE


@pytest.mark.parametrize("level", [1, 2])
def test_a_non_canonical_ed25519_signature_is_bad_signature(level: int) -> None:
    env = make_env("EdDSA", "EdDSA")
    assert env.reason(_on_level(env, level, _s_plus_order)) == Reason.BAD_SIGNATURE


def test_a_small_order_device_key_is_bad_signature_not_a_skeleton_key() -> None:
    """Under the identity point `R = identity, S = 0` signs every message; OpenSSL takes it,
    libsodium does not.  The key is a valid point, so the QR is not malformed."""
    env = make_env("EdDSA", "EdDSA")
    assert ed25519.raw_point_is_valid(ED25519_IDENTITY)
    level1 = env.level1(env.claims(cnf={1: {1: 1, -1: 6, -2: ED25519_IDENTITY}}))
    level2 = env.phone(level1).level2(NOW)
    forged = to_qr(_with_signature(level2, lambda _: ED25519_IDENTITY + bytes(32)))
    assert env.reason(forged) == Reason.BAD_SIGNATURE


def test_qr_freshness(env: Env) -> None:
    assert env.reason(env.qr(gen_time=NOW - 61)) == Reason.QR_EXPIRED
    assert env.reason(env.qr(gen_time=NOW + 31)) == Reason.QR_NOT_YET_VALID
    assert env.reason(env.qr(gen_time=0)) == Reason.QR_EXPIRED
    assert env.reason(env.qr(gen_time=2**64 - 1)) == Reason.QR_NOT_YET_VALID


# --- the order of steps ---------------------------------------------------------------


def test_step_order(env: Env) -> None:
    untrusted = Env(env.issuer, env.device, env.device_alg, EsscVerifier(TrustList([])))
    assert untrusted.reason(untrusted.qr(cn="bad")) == Reason.MALFORMED_CREDENTIAL  # 1 < 2
    assert untrusted.reason(untrusted.qr(exp=NOW - 1)) == Reason.UNKNOWN_KEY  # 2 < 4
    expired_forged = env.phone(tampered(env.level1(env.claims(exp=NOW - 1)))).qr(NOW)
    assert env.reason(expired_forged) == Reason.BAD_SIGNATURE  # 3 < 4
    expired_phone = env.phone(env.level1(env.claims(exp=NOW - 1)))
    assert env.reason(to_qr(tampered(expired_phone.level2(NOW)))) == Reason.CREDENTIAL_EXPIRED
    lying = expired_phone.level2(NOW, protected={1: -7 if env.device_alg == "EdDSA" else -8})
    assert env.reason(to_qr(lying)) == Reason.CREDENTIAL_EXPIRED  # 4 < 5
    early = env.phone(env.level1(env.claims(iat=NOW + 301)))
    assert env.reason(to_qr(tampered(early.level2(NOW)))) == Reason.CREDENTIAL_NOT_YET_VALID
    stale = env.phone().level2(NOW - 61)
    assert env.reason(to_qr(tampered(stale))) == Reason.BAD_SIGNATURE  # 5 < 6
    stale_lying = env.phone().level2(NOW - 61, protected={1: -7 if env.device_alg == "EdDSA"
                                                           else -8})
    assert env.reason(to_qr(stale_lying)) == Reason.MALFORMED_CREDENTIAL
    assert env.reason(env.body({1: tampered(env.level1()), 2: True})) == (
        Reason.MALFORMED_CREDENTIAL)  # level-2 shape (1) before the inner signature (3)


# --- the level-1 cache ----------------------------------------------------------------


def test_a_cached_credential_is_still_checked_for_validity(env: Env) -> None:
    qr = env.qr(exp=NOW + 100, iat=NOW + 300)
    assert env.verifier.verify(qr, NOW)
    assert env.verifier.cached_credentials == 1
    assert env.reason(qr, NOW + 101) == Reason.CREDENTIAL_EXPIRED
    assert env.reason(qr, NOW - 1) == Reason.CREDENTIAL_NOT_YET_VALID
    assert env.verifier.verify(qr, NOW + 1)


def test_a_cached_credential_needs_its_key_to_stay_a_candidate() -> None:
    env = make_env(exp=NOW + 10)
    phone = env.phone()
    assert env.verifier.verify(phone.qr(NOW), NOW)
    assert env.reason(phone.qr(NOW + 20), NOW + 20) == Reason.UNKNOWN_KEY


def test_when_the_cached_key_expires_another_sharing_its_kid_verifies_afresh() -> None:
    env = make_env()
    public = env.issuer.private_key.public_key()
    old, new = (public_jwk(public, env.issuer.kid, "EdDSA", "i", **w)
                for w in ({"exp": NOW + 10}, {"nbf": NOW + 5}))
    env.verifier = EsscVerifier(TrustList.from_jwks({"keys": [old, new]}))
    phone = env.phone()
    assert env.verifier.verify(phone.qr(NOW), NOW)
    assert env.verifier.verify(phone.qr(NOW + 20), NOW + 20)
    assert env.verifier.cached_credentials == 1


def test_the_cache_is_bounded_and_can_be_off() -> None:
    env = make_env()
    qrs = [env.qr(sub=bytes([i]) * 16) for i in range(3)]
    for size, expected in ((2, 2), (0, 0)):
        env.verifier = EsscVerifier(trust_of(env.issuer), level1_cache_size=size)
        for qr in qrs + qrs:
            assert env.verifier.verify(qr, NOW)
        assert env.verifier.cached_credentials == expected


def test_failures_are_not_cached_and_level_2_is_checked_on_every_scan(env: Env) -> None:
    assert env.reason(env.phone(tampered(env.level1())).qr(NOW)) == Reason.BAD_SIGNATURE
    assert env.verifier.cached_credentials == 0
    phone = env.phone()
    assert env.verifier.verify(phone.qr(NOW), NOW)
    assert env.reason(to_qr(tampered(phone.level2(NOW)))) == Reason.BAD_SIGNATURE
    lying = phone.level2(NOW, protected={1: -7 if env.device_alg == "EdDSA" else -8})
    assert env.reason(to_qr(lying)) == Reason.MALFORMED_CREDENTIAL
    assert env.reason(phone.qr(NOW - 61)) == Reason.QR_EXPIRED


# --- Base45 ---------------------------------------------------------------------------


def test_b45decode_agrees_with_the_reference_encoder() -> None:
    rng = random.Random(9285)
    for length in list(range(40)) + [rng.randrange(1000) for _ in range(200)]:
        data = rng.randbytes(length)
        assert b45decode(base45.b45encode(data).decode()) == data
    assert b45decode("QED8WEX0") == b"ietf!"  # RFC 9285 §4.3
    assert b45decode("FGW") == b"\xff\xff"  # the largest group: 65535
    for bad in ("GGW", "ZZ", "0", "abc", "00\n", "\u00c400"):  # overflow, dangling, alphabet
        with pytest.raises(cose.FormatError):
            b45decode(bad)


# --- fuzz: nothing but Rejected may escape ---------------------------------------------


def _random_cbor(rng: random.Random, depth: int = 0) -> object:
    scalars: list[Callable[[], object]] = [
        lambda: rng.randrange(-(2**64), 2**64), lambda: rng.randrange(-30, 30),
        lambda: rng.choice([True, False, None, cbor2.undefined, cbor2.CBORSimpleValue(99)]),
        lambda: rng.choice([0.0, -7.0, 1.5, float("nan"), float("inf"), 1e300]),
        lambda: rng.randbytes(rng.choice([0, 8, 15, 16, 32, 33, 64])),
        lambda: rng.choice(["", "A12345678", "369900", "ESSC", "\u0663" * 6]),
        lambda: 2**rng.randrange(64, 300),
    ]
    if depth >= 3 or rng.random() < 0.6:
        return rng.choice(scalars)()
    kind = rng.randrange(3)
    if kind == 0:
        return [_random_cbor(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 1:
        return {rng.choice([1, 2, 3, 4, -1, -2, "bd", "cn", 1.0, b"k", True]):
                _random_cbor(rng, depth + 1) for _ in range(rng.randrange(5))}
    tag = rng.choice([0, 1, 2, 3, 4, 5, 18, 24, 25, 28, 29, 30, 35, 36, 37, 100, 256, 258,
                      261, 1004, 55799, rng.randrange(2**32)])
    return cbor2.CBORTag(tag, _random_cbor(rng, depth + 1))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    choice = rng.randrange(5)
    if choice == 0:
        return tampered(data, at, rng.randrange(1, 256))
    if choice == 1:
        return data[:at]
    if choice == 2:
        return data[:at] + rng.randbytes(rng.randrange(1, 4)) + data[at:]
    if choice == 3:
        return data[:at] + data[at + rng.randrange(1, 20):]
    return data[:at] + rng.choice([b"\x9f", b"\xbf", b"\x5f", b"\x7f", b"\xff", b"\xc2",
                                   b"\xd8\x1c", b"\x1b" + b"\xff" * 8]) + data[at:]


def _assert_only_rejected(verifier: EsscVerifier, qr: str) -> None:
    with contextlib.suppress(Rejected):
        verifier.verify(qr, NOW)


def test_fuzz_only_rejected_escapes(env: Env) -> None:
    rng = random.Random(20261118)
    good = env.phone().level2(NOW)
    for _ in range(1500):
        _assert_only_rejected(env.verifier, to_qr(_mutate(rng, good)))
        _assert_only_rejected(env.verifier, to_qr(rng.randbytes(rng.randrange(200))))
        _assert_only_rejected(env.verifier, to_qr(cbor2.dumps(_random_cbor(rng))))
        text = "".join(rng.choice("0123456789ABCXYZ $%*+-./:abc\n\u00e9") for _ in range(30))
        _assert_only_rejected(env.verifier, "ESSC1:" + text)
    _assert_only_rejected(env.verifier, to_qr(b"\x81" * 5000 + b"\x00"))


def test_fuzz_signed_structures_only_rejected_escapes(env: Env) -> None:
    """Random values in every position, properly signed, so the checks run deep."""
    rng = random.Random(8392)
    for _ in range(300):
        claims = env.claims()
        label = rng.choice([*claims, "new"])
        claims[label] = _random_cbor(rng)
        key = cose_key(env.device.public_key())
        key[rng.choice([*key, -4])] = _random_cbor(rng)
        if rng.random() < 0.3:
            claims[8] = {1: key}
        level1 = env.issuer.sign(claims, tag=rng.random() < 0.5)
        body: dict[object, object] = {1: level1, 2: NOW, 3: bytes(8)}
        body[rng.choice([1, 2, 3, 4])] = _random_cbor(rng) if rng.random() < 0.5 else level1
        header = {1: rng.choice([-7, -8, _random_cbor(rng)])}
        qr = to_qr(sign1(env.device, cbor2.dumps(body), header, tag=rng.random() < 0.5))
        _assert_only_rejected(env.verifier, qr)


# --- the simulator's key-set loader ---------------------------------------------------


def test_load_issuers_reads_a_key_set_and_its_qrs_verify(tmp_path: Path) -> None:
    es256 = Issuer.generate("ES256")
    eddsa = Issuer.generate("EdDSA", iss="CN-110000-ESSC", kid=b"\xfb\xef\xbe12345")  # "----…"
    rolled = Issuer(generate_key("EdDSA"), eddsa.kid, "CN-110000-ESSC-2", "EdDSA")
    jwks = {"keys": [public_jwk(i.private_key.public_key(), i.kid, i.alg, i.iss)
                     for i in (es256, eddsa, rolled)]}
    (tmp_path / "trust-list.json").write_text(json.dumps(jwks))
    (tmp_path / "issuers").mkdir()
    for issuer, suffix in ((es256, ""), (eddsa, ""), (rolled, "-2")):
        kid = base64.urlsafe_b64encode(issuer.kid).rstrip(b"=").decode()
        pem = issuer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        (tmp_path / "issuers" / f"{kid}{suffix}.pem").write_bytes(pem)
    loaded = load_issuers(tmp_path)
    assert sorted((i.kid, i.alg, i.iss) for i in loaded) == sorted(
        (i.kid, i.alg, i.iss) for i in (es256, eddsa, rolled))
    verifier = EsscVerifier(TrustList.from_jwks(jwks))
    for issuer in loaded:
        env = Env(issuer, generate_key("ES256"), "ES256", verifier)
        assert verifier.verify(env.qr(), NOW).holder_ref == SUB.hex()


# --- conformance vector (docs/essc-vectors.md) ------------------------------------------

VECTOR_ISSUER_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
VECTOR_DEVICE_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
VECTOR_QR = (
    "ESSC1:RRQXO8P608CK$TTT70Q6QTWGSLK/-4V99/SB%H1CT1+/1E8BYALC.DX*9FL6OA7646OW51OA9L8K5AU"
    " 30S7FJBUAF02JF%MUTQJFUDF3/J4600CF3E V800.FKERKI60*Y0F6BKX7803EGTHGHTOIRF1TX9:0G%ZJ-T5"
    "2-5K1J$GO-%AGJ5O+CVJCLTCR60:WHWJC5/DPG8QF60R6J%6Y57$KEI-CL%6FA7156F68A.6X:U/IGS27M0CHB"
    "JV VG3BHK28JVPQHZU4ML30.H5MC.SG*$06288Z7$BK4E19ME+YI-M3BPV-WDQ5WJAT-4P+OHWWF8Y0CF3C2WF"
    "COU8ANJK.UKG.KZ8L9KLSVL2/LN7MM58QYLR7O3Y9BMO..6V27W6TR*5*8R0-CA0GXH29J2GQU5$NRHRRDNAC"
    "K851YKE ZBV05Y.HYRCFCE9$HGNI/.3YI0.M2*I670"
)


def test_conformance_vector() -> None:
    issuer_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR_ISSUER_SEED))
    device_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR_DEVICE_SEED))
    issuer = Issuer(issuer_key, bytes.fromhex("e55c1a0b0c0d0e0f"), "CN-369900-ESSC", "EdDSA")
    level1 = issuer.issue(SUB, 19500101, "B12345678", "369900", device_key.public_key(),
                          iat=1794873600, exp=1797465600)
    qr = Phone(level1, device_key, "EdDSA").qr(1795000000, bytes.fromhex("a0a1a2a3a4a5a6a7"
                                                                      "a8a9aaabacadaeaf"))
    assert qr == VECTOR_QR
    verifier = EsscVerifier(trust_of(issuer))
    assert verifier.verify(VECTOR_QR, 1795000005.5) == VerifiedCredential(
        kind="essc_qr", holder_ref="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        birth_date=dt.date(1950, 1, 1), region="369900", card_no="B12345678",
        nonce=bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"),
    )
    for now, reason in ((1795000061, Reason.QR_EXPIRED),
                        (1795000000 - 31, Reason.QR_NOT_YET_VALID),
                        (1797465601, Reason.CREDENTIAL_EXPIRED)):
        with pytest.raises(Rejected) as info:
            verifier.verify(VECTOR_QR, now)
        assert info.value.reason == reason


# --- bd and the scan's local date ------------------------------------------------------


def test_bd_after_the_scan_date_is_malformed(env: Env) -> None:
    qr = env.qr(bd=20260102)
    with pytest.raises(Rejected) as info:
        env.verifier.verify(qr, NOW, dt.date(2026, 1, 1))
    assert info.value.reason is Reason.MALFORMED_CREDENTIAL
    # Cached after a scan on a later day, it is still checked against each scan's date.
    assert env.verifier.verify(qr, NOW, dt.date(2026, 1, 2)).birth_date == dt.date(2026, 1, 2)
    with pytest.raises(Rejected) as info:
        env.verifier.verify(qr, NOW, dt.date(2026, 1, 1))
    assert info.value.reason is Reason.MALFORMED_CREDENTIAL


def test_bd_on_the_scan_date_is_accepted(env: Env) -> None:
    result = env.verifier.verify(env.qr(bd=20260101), NOW, dt.date(2026, 1, 1))
    assert result.birth_date == dt.date(2026, 1, 1)
