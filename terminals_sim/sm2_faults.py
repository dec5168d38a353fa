"""SM2 credential faults (protocol §2.1): what a national-algorithm e-card gets wrong.

Every code is made by the simulator's SM2 signer (GmSSL, `sm2keys.py`), independent of
the service's, under the key set's SM2 issuer. The expectations follow the §2
verification order with §2.1's rules: a cnf point off the SM2 curve is
`malformed_credential` at step 1, before any key or signature is looked at; a signature
over `SM3(M)` without `Z_A`, with `Z_A` of the empty ID, with `r = 0` or `s = n`, or
forged or tampered, is `bad_signature` (steps 3 and 5), before the QR's age (step 6);
an outer `alg` that does not fit the cnf key is `malformed_credential` (step 5). The
good codes, all-SM2 and both mixes with ES256, are decided by the oracle's policy.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import cbor2

from terminals_sim.cast import Cast
from terminals_sim.checks import Scenario, Stage, pick_bus_pair
from terminals_sim.ecard import (
    COSE_ALGS,
    Issuer,
    Phone,
    PublicKey,
    claims_map,
    generate_key,
    signature,
    to_qr,
)
from terminals_sim.ecard import tampered as flip_byte
from terminals_sim.expect import Expected
from terminals_sim.population import Holder
from terminals_sim.sm2keys import ORDER, Sm2PrivateKey, Sm2PublicKey
from terminals_sim.terminals import SimTerminal

__all__ = ["SM2_FAULTS"]

SM2 = COSE_ALGS["SM2"]
Sign = Callable[[bytes], bytes]


def _dumps(item: object) -> bytes:
    return cbor2.dumps(item, canonical=True)


def _sign1(protected: dict[int, object], payload: bytes, sign: Sign) -> bytes:
    """A tagged COSE_Sign1 whose signature over its Sig_structure1 is `sign`'s."""
    raw = _dumps(protected)
    signature = sign(_dumps(["Signature1", raw, b"", payload]))
    return _dumps(cbor2.CBORTag(18, [raw, {}, payload, signature]))


class _Codes:
    """Level-1 and level-2 codes for one holder, signed any way a fault needs."""

    def __init__(self, issuer: Issuer, holder: Holder, now: int) -> None:
        self.issuer, self.holder, self.now = issuer, holder, now
        self.device = Sm2PrivateKey.generate()

    def level1(self, device: PublicKey, sign: Sign | None = None, *,
               kid: bytes | None = None, alg: int = SM2, exp_in_s: int = 86400) -> bytes:
        h = self.holder
        claims = claims_map(iss=self.issuer.iss, sub=bytes.fromhex(h.ref),
                            birth_date=int(f"{h.birth:%Y%m%d}"), card_no=h.card_no,
                            region=h.region, device_public_key=device, iat=self.now - 3600,
                            exp=self.now + exp_in_s)
        key = self.issuer.private_key
        assert isinstance(key, Sm2PrivateKey)  # `_sm2_issuer` picked it
        return _sign1({1: alg, 4: kid or self.issuer.kid}, _dumps(claims), sign or key.sign)

    def level2(self, level1: bytes, sign: Sign, *, alg: int = SM2,
               gen_time: int | None = None) -> bytes:
        body = {1: level1, 2: self.now if gen_time is None else gen_time, 3: os.urandom(16)}
        return _sign1({1: alg}, _dumps(body), sign)

    def qr(self, level1: bytes | None = None, sign: Sign | None = None, **kw: object) -> str:
        """The holder's SM2 device signs (or `sign`) over `level1` (default: a good one)."""
        inner = self.level1(self.device.public) if level1 is None else level1
        return to_qr(self.level2(inner, sign or self.device.sign, **kw))  # type: ignore[arg-type]


def _with_signature(sign: Sign, r: int | None = None, s: int | None = None) -> Sign:
    """`sign` with `r` or `s` overwritten: a signature outside [1, n-1]."""
    def signed(data: bytes) -> bytes:
        good = sign(data)
        new_r = good[:32] if r is None else r.to_bytes(32, "big")
        new_s = good[32:] if s is None else s.to_bytes(32, "big")
        return new_r + new_s
    return signed


def _off_curve(key: Sm2PublicKey) -> Sm2PublicKey:
    """The point with the lowest bit of y flipped: (x, y ^ 1) is not on the curve."""
    return Sm2PublicKey(key.x, key.y[:-1] + bytes([key.y[-1] ^ 1]))


def _sm2_issuer(st: Stage) -> Issuer | None:
    return next((i for i in st.keys.issuers if i.alg == "SM2"), None)


def _cases(st: Stage, codes: _Codes) -> list[tuple[str, str, Expected | None]]:
    """(step, QR, expectation); None: a good code, for the oracle to decide."""
    now, issuer, device = codes.now, codes.issuer, codes.device
    key = issuer.private_key
    assert isinstance(key, Sm2PrivateKey)
    deny = Expected.deny
    forger = Sm2PrivateKey.generate()
    es256_device = generate_key("ES256")
    es256_issuers = [i for i in st.keys.issuers if i.alg == "ES256"]
    cases: list[tuple[str, str, Expected | None]] = [
        ("all-sm2", codes.qr(), None),
        ("sm2-issuer-es256-device",
         Phone(codes.level1(es256_device.public_key()), es256_device, "ES256").qr(now), None),
        ("forged-sm2-issuer", codes.qr(codes.level1(device.public, forger.sign)),
         deny("bad_signature")),
        ("forged-sm2-device", codes.qr(sign=forger.sign), deny("bad_signature")),
        ("tampered-sm2-level1", codes.qr(flip_byte(codes.level1(device.public))),
         deny("bad_signature")),
        ("tampered-sm2-level2", to_qr(flip_byte(codes.level2(
            codes.level1(device.public), device.sign))), deny("bad_signature")),
        ("sm2-issuer-without-za", codes.qr(codes.level1(device.public, key.sign_without_za)),
         deny("bad_signature")),
        ("sm2-device-without-za", codes.qr(sign=device.sign_without_za),
         deny("bad_signature")),
        ("sm2-issuer-empty-id", codes.qr(codes.level1(device.public, key.sign_with_empty_id)),
         deny("bad_signature")),
        ("sm2-device-empty-id", codes.qr(sign=device.sign_with_empty_id),
         deny("bad_signature")),
        ("sm2-r-zero", codes.qr(sign=_with_signature(device.sign, r=0)),
         deny("bad_signature")),
        ("sm2-s-n", codes.qr(sign=_with_signature(device.sign, s=ORDER)),
         deny("bad_signature")),
        # step 1 before steps 2-3: an off-curve cnf is malformed even under a forged issuer
        ("sm2-device-off-curve", codes.qr(codes.level1(_off_curve(device.public))),
         deny("malformed_credential")),
        ("sm2-device-off-curve-forged-issuer",
         codes.qr(codes.level1(_off_curve(device.public), forger.sign)),
         deny("malformed_credential")),
        ("sm2-outer-alg-es256", codes.qr(alg=COSE_ALGS["ES256"]),
         deny("malformed_credential")),
        # step 5 before 6: a QR both too old and signed without Z_A is a bad signature
        ("sm2-without-za-and-expired", codes.qr(sign=device.sign_without_za,
                                                gen_time=now - 90), deny("bad_signature")),
        ("sm2-expired-qr", codes.qr(gen_time=now - 90), deny("qr_expired")),
        ("sm2-credential-expired", codes.qr(codes.level1(device.public, exp_in_s=-10)),
         deny("credential_expired")),
        ("sm2-kid-under-es256", codes.qr(codes.level1(
            device.public, _es256_signer(), alg=COSE_ALGS["ES256"])), deny("unknown_key")),
    ]
    if es256_issuers:
        es256 = es256_issuers[0]
        h = codes.holder
        level1 = es256.issue(bytes.fromhex(h.ref), int(f"{h.birth:%Y%m%d}"), h.card_no,
                             h.region, device.public, now - 3600, now + 86400)
        cases += [
            ("es256-issuer-sm2-device", codes.qr(level1), None),
            ("sm2-device-outer-alg-es256", codes.qr(level1, alg=COSE_ALGS["ES256"]),
             deny("malformed_credential")),
        ]
    return cases


def _es256_signer() -> Sign:
    """A P-256 key's raw `r‖s`, for a credential that names the SM2 kid with alg ES256."""
    key = generate_key("ES256")
    return lambda data: signature(key, data)


async def sm2_faults(st: Stage, cast: Cast) -> None:
    """Good and faulty SM2 codes on a bus reader (§2 order with §2.1's rules)."""
    issuer = _sm2_issuer(st)
    if issuer is None:
        st.report.skipped[st.scenario] = "the key set has no SM2 issuer"
        return
    bus, _ = pick_bus_pair(st)
    holder = st.population.make(age=30, carriers="ecard", sm2=True)
    codes = _Codes(issuer, holder, int(st.now()))
    for step, qr, expected in _cases(st, codes):
        await st.present(bus, SimTerminal.qr_credential(qr), step=step,
                         holder=holder if expected is None else None, expect=expected)


SM2_FAULTS: tuple[Scenario, ...] = (Scenario("sm2_faults", sm2_faults),)
