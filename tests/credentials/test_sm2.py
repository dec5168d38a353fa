"""SM2 with SM3 (protocol §2.1) on both levels, in every mix with ES256 and EdDSA.

The QRs are signed by the simulator, whose SM2 signer is GmSSL (`gmssl_pyx`), while
the validator verifies with Tongsuo: every accepted QR here is a cross-check of two
independent implementations. Signatures made by the `openssl` command line (with
`distid:1234567812345678`) verify in the validator, and the GM/T 0003.5 example on the
recommended curve verifies.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import cbor2
import gmssl_pyx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from terminals_sim.ecard import Alg, Issuer, Phone, claims_map, generate_key, sign1, to_qr
from terminals_sim.sm2keys import Sm2PrivateKey, Sm2PublicKey
from validator.credentials import cose, sm2
from validator.credentials.essc_qr import EsscVerifier
from validator.credentials.trust import TrustList, TrustListError, public_jwk
from validator.credentials.verified import Rejected
from validator.keygen import init_keyset
from validator.keyset import load_keyset
from validator.reasons import Reason

NOW = 1_795_000_000
SUB = bytes(range(16))
ALGS: tuple[Alg, ...] = ("ES256", "EdDSA", "SM2")
# GM/T 0003.5-2012 A.2 (GB/T 32918.5-2017 Annex A): sm2p256v1, ID 1234567812345678.
EXAMPLE_X = bytes.fromhex("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020")
EXAMPLE_Y = bytes.fromhex("CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
EXAMPLE_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk_of(issuer: Issuer, **window: int) -> dict[str, object]:
    key = issuer.private_key.public_key()
    if isinstance(key, Sm2PublicKey):  # §2.1's layout, written by hand
        return {"kty": "EC", "crv": "SM2", "alg": "SM2SM3", "x": b64(key.x), "y": b64(key.y),
                "kid": b64(issuer.kid), "iss": issuer.iss, **window}
    return public_jwk(key, issuer.kid, issuer.alg, issuer.iss, **window)


def verifier_for(*issuers: Issuer) -> EsscVerifier:
    return EsscVerifier(TrustList.from_jwks({"keys": [jwk_of(i) for i in issuers]}))


def qr_for(issuer: Issuer, device_alg: Alg, *, sign_level2: object = None) -> str:
    device = generate_key(device_alg)
    claims = claims_map(iss=issuer.iss, sub=SUB, birth_date=19500101, card_no="A12345678",
                        region="369900", device_public_key=device.public_key(),
                        iat=NOW - 60, exp=NOW + 86400)
    return Phone(issuer.sign(claims), device, device_alg).qr(NOW)


def reason(verifier: EsscVerifier, qr: str) -> Reason:
    with pytest.raises(Rejected) as info:
        verifier.verify(qr, NOW)
    return info.value.reason


@pytest.mark.parametrize("device_alg", ALGS)
@pytest.mark.parametrize("issuer_alg", ALGS)
def test_every_mix_with_sm2_verifies_on_both_levels(issuer_alg: Alg, device_alg: Alg) -> None:
    issuer = Issuer.generate(issuer_alg)
    verifier = verifier_for(issuer)
    qr = qr_for(issuer, device_alg)
    assert verifier.verify(qr, NOW).holder_ref == SUB.hex()
    assert verifier.cached_credentials == 1
    assert verifier.verify(qr_for(issuer, device_alg), NOW).holder_ref == SUB.hex()


def _sm2_qr(level1_key: Sm2PrivateKey, device: Sm2PrivateKey, *, level: int,
            how: str) -> tuple[EsscVerifier, str]:
    """An all-SM2 QR whose signature at `level` is made `how`."""
    issuer = Issuer(level1_key, bytes(8), "CN-369900-ESSC", "SM2")
    claims = claims_map(iss=issuer.iss, sub=SUB, birth_date=19500101, card_no="A12345678",
                        region="369900", device_public_key=device.public_key(),
                        iat=NOW - 60, exp=NOW + 86400)

    def signed(key: Sm2PrivateKey, protected: dict[int, object], payload: bytes) -> bytes:
        raw = cbor2.dumps(protected, canonical=True)
        to_sign = cbor2.dumps(["Signature1", raw, b"", payload], canonical=True)
        sig = {"good": key.sign, "no_za": key.sign_without_za,
               "empty_id": key.sign_with_empty_id}[how](to_sign)
        if how == "r0":
            sig = bytes(32) + key.sign(to_sign)[32:]
        return cbor2.dumps([raw, {}, payload, sig])

    inner_how = how if level == 1 else "good"
    payload = cbor2.dumps(claims, canonical=True)
    level1 = (signed if inner_how != "good" else
              lambda k, p, pl: sign1(k, pl, p, tag=False))(level1_key, {1: -65700, 4: bytes(8)},
                                                             payload)
    body = cbor2.dumps({1: level1, 2: NOW, 3: bytes(12)}, canonical=True)
    level2 = signed(device, {1: -65700}, body) if level == 2 else sign1(device, body)
    return verifier_for(issuer), to_qr(level2)


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("how", ["no_za", "empty_id"])
def test_a_signature_without_za_or_with_the_empty_id_is_bad(level: int, how: str) -> None:
    verifier, qr = _sm2_qr(Sm2PrivateKey.generate(), Sm2PrivateKey.generate(), level=level,
                           how=how)
    assert reason(verifier, qr) is Reason.BAD_SIGNATURE


def test_forged_and_tampered_sm2_signatures_are_bad() -> None:
    issuer = Issuer.generate("SM2")
    forger = Issuer(Sm2PrivateKey.generate(), issuer.kid, issuer.iss, "SM2")
    assert reason(verifier_for(issuer), qr_for(forger, "SM2")) is Reason.BAD_SIGNATURE
    verifier, good = _sm2_qr(Sm2PrivateKey.generate(), Sm2PrivateKey.generate(), level=2,
                             how="good")
    verifier.verify(good, NOW)
    raw = bytearray(cose.decode(base45_decode(good)) and base45_decode(good))
    raw[-1] ^= 1  # inside the level-2 signature
    assert reason(verifier, to_qr(bytes(raw))) is Reason.BAD_SIGNATURE


def base45_decode(qr: str) -> bytes:
    import base45
    decoded: bytes = base45.b45decode(qr[len("ESSC1:"):])
    return decoded


@pytest.mark.parametrize("sig", [
    bytes(32) + (1).to_bytes(32, "big"),  # r = 0
    (1).to_bytes(32, "big") + bytes(32),  # s = 0
    sm2.N.to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = n
    (1).to_bytes(32, "big") + sm2.N.to_bytes(32, "big"),  # s = n
    bytes([0xFF]) * 64,  # both above n
    EXAMPLE_SIG[:63], EXAMPLE_SIG + b"\x00", b"",  # wrong lengths
])
def test_r_or_s_out_of_range_or_a_wrong_length_does_not_verify(sig: bytes) -> None:
    key = sm2.load(EXAMPLE_X, EXAMPLE_Y)
    assert not sm2.verify(key, sig, b"message digest")


def test_the_published_example_verifies() -> None:
    key = sm2.load(EXAMPLE_X, EXAMPLE_Y)
    assert sm2.verify(key, EXAMPLE_SIG, b"message digest")
    assert not sm2.verify(key, EXAMPLE_SIG, b"message digesT")


def test_an_off_curve_sm2_device_key_is_malformed() -> None:
    issuer = Issuer.generate("SM2")
    device = Sm2PrivateKey.generate()
    y = bytearray(device.public.y)
    y[-1] ^= 1
    off = Sm2PrivateKey(device.d, Sm2PublicKey(device.public.x, bytes(y)))
    claims = claims_map(iss=issuer.iss, sub=SUB, birth_date=19500101, card_no="A12345678",
                        region="369900", device_public_key=off.public_key(),
                        iat=NOW - 60, exp=NOW + 86400)
    qr = Phone(issuer.sign(claims), device, "SM2").qr(NOW)
    assert reason(verifier_for(issuer), qr) is Reason.MALFORMED_CREDENTIAL
    with pytest.raises(cose.FormatError):
        sm2.load(bytes(32), bytes(32))  # the point at infinity's encoding


@pytest.mark.parametrize(("issuer_alg", "device_alg", "outer_alg"), [
    ("SM2", "SM2", -7), ("SM2", "SM2", -8), ("SM2", "ES256", -65700),
    ("ES256", "EdDSA", -65700),
])
def test_outer_alg_must_fit_the_cnf_key(issuer_alg: Alg, device_alg: Alg, outer_alg: int
                                        ) -> None:
    issuer = Issuer.generate(issuer_alg)
    device = generate_key(device_alg)
    claims = claims_map(iss=issuer.iss, sub=SUB, birth_date=19500101, card_no="A12345678",
                        region="369900", device_public_key=device.public_key(),
                        iat=NOW - 60, exp=NOW + 86400)
    phone = Phone(issuer.sign(claims), device, device_alg)
    qr = to_qr(phone.level2(NOW, protected={1: outer_alg}))
    assert reason(verifier_for(issuer), qr) is Reason.MALFORMED_CREDENTIAL


def test_an_sm2_credential_signed_under_another_alg_header_is_unknown_key() -> None:
    sm2_issuer = Issuer.generate("SM2")
    lying = Issuer(sm2_issuer.private_key, sm2_issuer.kid, sm2_issuer.iss, "ES256")
    assert reason(verifier_for(sm2_issuer), qr_for(lying, "SM2")) is Reason.UNKNOWN_KEY


def test_several_sm2_keys_share_a_kid_with_windows() -> None:
    old, new = Issuer.generate("SM2"), Issuer.generate("SM2")
    new = Issuer(new.private_key, old.kid, old.iss, "SM2")
    trust = TrustList.from_jwks({"keys": [jwk_of(old, exp=NOW - 1), jwk_of(new, nbf=NOW - 10)]})
    verifier = EsscVerifier(trust)
    assert verifier.verify(qr_for(new, "SM2"), NOW).holder_ref == SUB.hex()
    assert reason(verifier, qr_for(old, "SM2")) is Reason.BAD_SIGNATURE


def _der(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def test_the_simulators_za_is_gmssls() -> None:
    """The simulator hashes `Z_A` itself and signs GmSSL's digest: GmSSL's verifier, which
    computes `Z_A` from the ID on its own, agrees on each variant (and on nothing else)."""
    key = Sm2PrivateKey.generate()
    public, message = key.public.x + key.public.y, b"Sig_structure1 bytes"
    good = _der(key.sign(message))
    assert gmssl_pyx.sm2_verify(public, message, good, signer_id=b"1234567812345678")
    assert not gmssl_pyx.sm2_verify(public, message + b"!", good,
                                    signer_id=b"1234567812345678")
    no_za = _der(key.sign_without_za(message))
    assert gmssl_pyx.sm2_verify_sm3_digest(public, gmssl_pyx.sm3_hash(message), no_za)
    assert not gmssl_pyx.sm2_verify(public, message, no_za, signer_id=b"1234567812345678")
    empty = _der(key.sign_with_empty_id(message))
    assert not gmssl_pyx.sm2_verify(public, message, empty, signer_id=b"1234567812345678")


def test_a_key_set_written_by_someone_else_in_the_layout_loads(tmp_path: Path) -> None:
    """Keys from `keys init` and an SM2 key made by the `openssl` CLI both load."""
    init_keyset(tmp_path, region="369900", terminal_ids=["T-1"])
    keys = load_keyset(tmp_path)
    assert {k.alg for k in keys.trust_list.keys} == {-7, -8, -65700}
    pem = next(p for p in (tmp_path / "issuers").glob("*.pem") if b"-----" in p.read_bytes()
               and sm2_or_none(p.read_bytes()) is not None)
    der = base64.b64decode(b"".join(pem.read_bytes().splitlines()[1:-1]))
    assert bytes.fromhex("06082a811ccf5501822d") in der  # OID 1.2.156.10197.1.301


def sm2_or_none(pem: bytes) -> object:
    from terminals_sim.sm2keys import load_pem
    return load_pem(pem)


def test_openssl_cli_signatures_verify_and_its_pem_loads(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command line")
    pem = tmp_path / "k.pem"
    made = subprocess.run([openssl, "genpkey", "-algorithm", "SM2", "-out", str(pem)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("this openssl has no SM2")
    key = sm2_or_none(pem.read_bytes())
    assert isinstance(key, Sm2PrivateKey)
    message = tmp_path / "m"
    message.write_bytes(b"a Sig_structure1, as any client would sign it")
    sig = subprocess.run([openssl, "pkeyutl", "-sign", "-inkey", str(pem), "-rawin",
                          "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                          "-in", str(message)], capture_output=True, check=True).stdout
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(sig)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    verifying = sm2.load(key.public.x, key.public.y)
    assert sm2.verify(verifying, raw, message.read_bytes())
    assert not sm2.verify(verifying, raw, message.read_bytes() + b"x")
    assert gmssl_pyx.sm2_verify(key.public.x + key.public.y, message.read_bytes(),
                                encode_dss_signature(r, s))
    # The trust list takes the CLI's key in §2.1's JWK layout.
    trust = TrustList.from_jwks({"keys": [{"kty": "EC", "crv": "SM2", "alg": "SM2SM3",
                                           "x": b64(key.public.x), "y": b64(key.public.y),
                                           "kid": b64(bytes(8)), "iss": "other"}]})
    assert trust.candidates(bytes(8), sm2.COSE_ALG, NOW)[0].verify(raw, message.read_bytes())


def test_trust_list_refuses_an_sm2_key_off_the_curve() -> None:
    key = Sm2PrivateKey.generate()
    jwk = {"kty": "EC", "crv": "SM2", "alg": "SM2SM3", "x": b64(key.public.x),
           "y": b64(bytes(32)), "kid": b64(bytes(8)), "iss": "i"}
    with pytest.raises(TrustListError, match="SM2"):
        TrustList.from_jwks({"keys": [jwk]})
    with pytest.raises(TrustListError, match="crv"):
        TrustList.from_jwks({"keys": [jwk | {"crv": "P-256", "y": b64(key.public.y)}]})


def test_a_remembered_sm2_credential_still_checks_each_dynamic_code() -> None:
    """The level-1 cache keeps an SM2 device key as point bytes: a hit must still verify
    the device's signature with that key, and refuse another key's."""
    issuer = Issuer.generate("SM2")
    verifier = verifier_for(issuer)
    device = Sm2PrivateKey.generate()
    claims = claims_map(iss=issuer.iss, sub=SUB, birth_date=19500101, card_no="A12345678",
                        region="369900", device_public_key=device.public_key(),
                        iat=NOW - 60, exp=NOW + 86400)
    level1 = issuer.sign(claims)
    verifier.verify(Phone(level1, device, "SM2").qr(NOW), NOW)
    assert verifier.cached_credentials == 1
    again = verifier.verify(Phone(level1, device, "SM2").qr(NOW, bytes(12)), NOW)
    assert again.holder_ref == SUB.hex() and again.nonce == bytes(12)
    forged = Phone(level1, Sm2PrivateKey.generate(), "SM2").qr(NOW)
    assert reason(verifier, forged) is Reason.BAD_SIGNATURE
    assert verifier.cached_credentials == 1
