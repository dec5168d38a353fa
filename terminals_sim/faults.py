"""Credential faults: bad QR codes, bad cards, replays, clones and blocked cards.

Every expectation here is fixed by the verification order of protocol §2 and §3: the
first failing step names the reason. Faults run on bus readers (a bus never closes),
except the screenshot replay, which uses two gates of one spot when it has them.
"""

from __future__ import annotations

import datetime as dt
import os

import cbor2

from terminals_sim.card import Card, card_id_for, tampered
from terminals_sim.cast import Cast
from terminals_sim.checks import Scenario, Stage, pick_bus_pair, pick_spot_gates
from terminals_sim.ecard import Alg, Issuer, Phone, generate_key, to_qr
from terminals_sim.ecard import tampered as flip_byte
from terminals_sim.expect import Expected
from terminals_sim.population import Holder
from terminals_sim.terminals import SimTerminal

__all__ = ["CREDENTIAL_FAULTS"]


def _phone(issuer: Issuer, holder: Holder, *, iat: int, exp: int,
           card_no: str | None = None) -> Phone:
    """An e-card for `holder` with chosen validity (and card number) from `issuer`."""
    device = generate_key("EdDSA")
    level1 = issuer.issue(bytes.fromhex(holder.ref), int(f"{holder.birth:%Y%m%d}"),
                          card_no or holder.card_no, holder.region, device.public_key(), iat, exp)
    return Phone(level1, device, "EdDSA")


def _with_claim(level1: bytes, name: object, value: object) -> bytes:
    """The level 1 with one claim rewritten after signing (the signature no longer fits)."""
    item = cbor2.loads(level1)
    body = list(item.value if isinstance(item, cbor2.CBORTag) else item)
    claims = cbor2.loads(body[2])
    claims[name] = value
    body[2] = cbor2.dumps(claims, canonical=True)
    return cbor2.dumps(cbor2.CBORTag(18, body), canonical=True)


async def qr_faults(st: Stage, cast: Cast) -> None:
    """Time, signature and shape faults of ESSC1 codes (§2 verification order)."""
    bus, _ = pick_bus_pair(st)
    h, now = cast.adult, int(st.now())
    real = st.keys.issuers[0]
    other_alg: Alg = "EdDSA" if real.alg == "ES256" else "ES256"
    deny = Expected.deny
    good = h.phone
    cases: list[tuple[str, str, Expected]] = [
        ("expired", good.qr(now - 90), deny("qr_expired")),
        ("future", good.qr(now + 120), deny("qr_not_yet_valid")),
        ("stripped-level2", to_qr(good.level1), deny("malformed_credential")),
        ("tampered-level2", to_qr(flip_byte(good.level2(now))), deny("bad_signature")),
        ("tampered-level1-sig", Phone(flip_byte(good.level1), good.device_private_key,
                                      good.alg).qr(now), deny("bad_signature")),
        ("tampered-level1-claim", Phone(_with_claim(good.level1, "bd", 19400101),
                                        good.device_private_key, good.alg).qr(now),
         deny("bad_signature")),
        ("outer-alg-lies", to_qr(good.level2(now, protected={1: -8 if good.alg == "ES256"
                                                             else -7})),
         deny("malformed_credential")),
        ("forged-issuer", _phone(Issuer(generate_key(real.alg), real.kid, real.iss, real.alg),
                                 h, iat=now - 60, exp=now + 86400).qr(now), deny("bad_signature")),
        ("unknown-kid", _phone(Issuer.generate(real.alg, kid=os.urandom(8)), h,
                               iat=now - 60, exp=now + 86400).qr(now), deny("unknown_key")),
        ("kid-with-other-alg", _phone(Issuer(generate_key(other_alg), real.kid, real.iss,
                                             other_alg), h, iat=now - 60,
                                      exp=now + 86400).qr(now), deny("unknown_key")),
        ("credential-expired", _phone(real, h, iat=now - 86400, exp=now - 10).qr(now),
         deny("credential_expired")),
        ("credential-future", _phone(real, h, iat=now + 3600, exp=now + 86400).qr(now),
         deny("credential_not_yet_valid")),
        ("no-prefix", "ESSC2:" + good.qr(now)[6:], deny("unsupported_credential")),
        ("bad-base45", "ESSC1:not~base45", deny("malformed_credential")),
    ]
    for step, qr, expected in cases:
        await st.present(bus, SimTerminal.qr_credential(qr), step=step, expect=expected)


async def screenshot_replay(st: Stage, cast: Cast) -> None:
    """A screenshot of a QR used at a second gate (and again at the first)."""
    gates = pick_spot_gates(st)
    first, second = (gates[0], gates[1]) if len(gates) > 1 else pick_bus_pair(st)
    h = cast.visitor
    qr = SimTerminal.qr_credential(h.phone.qr(int(st.now())))
    await st.present(first, qr, step="original", holder=h)
    await st.present(second, qr, step="replay-second-gate", expect=Expected.deny("replayed"))
    await st.present(first, qr, step="replay-same-gate", expect=Expected.deny("replayed"))


async def card_faults(st: Stage, cast: Cast) -> None:
    """Cloned, altered, mis-keyed, outdated and expired cards (§3 verification order)."""
    bus_a, bus_b = pick_bus_pair(st)
    h = cast.skimmed
    card = h.card
    assert card is not None  # the cast gives `skimmed` a card
    deny = Expected.deny
    for n in (1, 2):
        await st.scan(bus_a, h, step=f"genuine-{n}")
    # skimmed two and one transactions ago: a lower counter, then an equal one
    now = st.now()
    await st.present(bus_b, bus_b.tap_credential(card.clone(atc=card.atc - 2), now), at=now,
                     step="clone-behind", expect=deny("card_clone_suspected"))
    now = st.now()
    await st.present(bus_b, bus_b.tap_credential(card.clone(atc=card.atc - 1), now), at=now,
                     step="clone-equal", expect=deny("replayed"))
    now = st.now()
    cases = [
        ("atc-rewritten", tampered(bus_a.tap_credential(card, now), atc=card.atc + 7),
         deny("cryptogram_invalid")),
        ("other-terminal", card.tap(bus_b.id, int(now), "0A1B2C3D"), deny("cryptogram_invalid")),
        ("unknown-kv", bus_a.tap_credential(card.with_kv(250), now), deny("unknown_key")),
        ("old-version", tampered(bus_a.tap_credential(card, now), version="2.00"),
         deny("unsupported_card_version")),
        ("bad-ssn-check", tampered(bus_a.tap_credential(card, now), ssn=_bad_check(h.ssn)),
         deny("malformed_credential")),
        ("card-id-region", tampered(bus_a.tap_credential(card, now),
                                    card_id="110100" + card.card_id[6:]),
         deny("malformed_credential")),
        ("expired-card", bus_a.tap_credential(_expired_card(card, st.city.local(now).date()),
                                              now), deny("card_expired")),
        ("atc-as-string", tampered(bus_a.tap_credential(card, now), atc=str(card.atc)),
         Expected.http(400, "invalid_request")),
    ]
    for step, credential, expected in cases:  # all made for `now`, however long they take
        await st.present(bus_a, dict(credential), step=step, expect=expected, at=now)
    await st.scan(bus_a, h, step="genuine-after")


def _bad_check(ssn: str) -> str:
    wrong = "0" if ssn[-1] != "0" else "1"
    return ssn[:17] + wrong


def _expired_card(card: Card, today: dt.date) -> Card:
    """The holder's previous card, which ran out yesterday (still correctly keyed)."""
    expires = today - dt.timedelta(days=1)
    issued = expires - dt.timedelta(days=3652)
    return Card(region=card.region, ssn=card.ssn, card_no="EXP" + card.card_no[3:],
                card_id=card_id_for(card.region, int(card.card_id[-16:], 16) ^ 1),
                issued=f"{issued:%Y%m%d}", expires=f"{expires:%Y%m%d}", kv=card.kv,
                master_key=card.master_key)


async def blocked(st: Stage, cast: Cast) -> None:
    """挂失: the lost card and an e-card still bound to it are refused; the new card
    works; a suspended holder is refused on every carrier."""
    bus, _ = pick_bus_pair(st)
    lost, now = cast.lost, st.now()
    old = lost.lost_cards[0]
    await st.present(bus, bus.tap_credential(old, now), step="lost-card", at=now,
                     expect=Expected.deny("card_blocked"))
    stale = _phone(st.keys.issuers[0], lost, iat=int(now) - 86400 * 30, exp=int(now) + 86400,
                   card_no=old.card_no)
    await st.present(bus, bus.qr_credential(stale.qr(int(now))), step="ecard-on-lost-card",
                     expect=Expected.deny("card_blocked"))
    assert lost.card is not None
    await st.scan(bus, lost, step="new-card")
    await st.present(bus, bus.qr_credential(lost.phone.qr(int(st.now()))), step="new-ecard",
                     holder=lost)
    suspended = cast.suspended
    assert suspended.card is not None
    await st.scan(bus, suspended, step="suspended-holder", expect=Expected.deny("holder_blocked"))


CREDENTIAL_FAULTS: tuple[Scenario, ...] = (
    Scenario("qr_faults", qr_faults),
    Scenario("screenshot_replay", screenshot_replay),
    Scenario("card_faults", card_faults),
    Scenario("blocked", blocked, needs_registry=True),
)
