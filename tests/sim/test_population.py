"""The synthetic population: reproducible, valid SSNs, a realistic mix, wired carriers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import base45
import cbor2
import pytest

from terminals_sim.cityconf import CityConfig
from terminals_sim.keyset import SimKeys, holder_ref
from terminals_sim.population import Holder, Population, age_on
from terminals_sim.registration import blocks_of, registry_lines, write_exports

TODAY = dt.date(2026, 12, 2)
NOW = int(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())


def _population(keys: SimKeys, city: CityConfig, seed: int, n: int) -> list[Holder]:
    return Population(keys, city, seed=seed, today=TODAY, now=NOW).generate(n)


def _fingerprint(h: Holder) -> tuple[object, ...]:
    return (h.ssn, h.ref, h.region, h.categories, h.card_no, h.blocked, h.has_ecard,
            h.card.card_id if h.card else None, tuple(c.card_no for c in h.lost_cards))


def _check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2, written again here so the test does not trust card.py."""
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


def test_same_seed_same_population(keys: SimKeys, city: CityConfig) -> None:
    first = _population(keys, city, seed=42, n=300)
    again = _population(keys, city, seed=42, n=300)
    assert [_fingerprint(h) for h in first] == [_fingerprint(h) for h in again]
    # device keys are derived from the seed too: the same phone keys
    with_ecard = [(a, b) for a, b in zip(first, again, strict=True) if a.has_ecard][:5]
    for a, b in with_ecard:
        assert a.phone.device_private_key.public_key() == b.phone.device_private_key.public_key()


def test_other_seed_other_population(keys: SimKeys, city: CityConfig) -> None:
    a = {h.ssn for h in _population(keys, city, seed=1, n=200)}
    b = {h.ssn for h in _population(keys, city, seed=2, n=200)}
    assert len(a & b) < 5


def test_every_ssn_is_valid_and_unique(keys: SimKeys, city: CityConfig) -> None:
    holders = _population(keys, city, seed=7, n=2000)
    assert len({h.ssn for h in holders}) == len(holders)
    for h in holders:
        assert len(h.ssn) == 18 and h.ssn[:17].isdigit()
        assert h.ssn[17] == _check_char(h.ssn[:17])
        birth = dt.date(int(h.ssn[6:10]), int(h.ssn[10:12]), int(h.ssn[12:14]))
        assert birth == h.birth <= TODAY
        assert h.ref == holder_ref(keys.pepper, h.ssn)
        assert len(h.ref) == 32 and int(h.ref, 16) >= 0


def test_age_mix_residents_and_categories(keys: SimKeys, city: CityConfig) -> None:
    holders = _population(keys, city, seed=3, n=4000)
    ages = [h.age(TODAY) for h in holders]
    share = {band: sum(lo <= a <= hi for a in ages) / len(ages)
             for band, (lo, hi) in {"60+": (60, 200), "60-64": (60, 64), "65-69": (65, 69),
                                    "70+": (70, 200)}.items()}
    assert 0.17 <= share["60+"] <= 0.23
    assert all(share[b] > 0.03 for b in ("60-64", "65-69", "70+"))
    residents = [h for h in holders if h.resident]
    assert 0.70 <= len(residents) / len(holders) <= 0.80
    assert all(h.ssn.startswith("3699") and h.region == "369900" for h in residents)
    assert all(not h.region.startswith("3699") for h in holders if not h.resident)
    codes = [c.code for h in holders for c in h.categories]
    assert 0.02 <= codes.count("veteran") / len(holders) <= 0.04
    grades = {c.grade for h in holders for c in h.categories if c.code == "disabled"}
    assert grades == {1, 2, 3, 4}
    untils = [c.until for h in holders for c in h.categories if c.until is not None]
    assert any(u < TODAY for u in untils) and any(u >= TODAY for u in untils)


def test_carriers_follow_the_key_set(keys: SimKeys, city: CityConfig) -> None:
    holders = _population(keys, city, seed=5, n=1500)
    # the key set has master keys for the city only: visitors carry e-cards only
    assert all(h.card is None and h.has_ecard for h in holders if not h.resident)
    assert any(h.card and h.has_ecard for h in holders)
    assert any(h.card and not h.has_ecard for h in holders)
    lost = [h for h in holders if h.lost_cards]
    assert lost, "some holders lost a card"
    for h in lost:
        assert h.card is not None and h.card.card_no == h.card_no
        assert all(old.card_no != h.card_no for old in h.lost_cards)


def test_ecard_claims_bind_the_holder(keys: SimKeys, city: CityConfig) -> None:
    holder = Population(keys, city, seed=9, today=TODAY, now=NOW).make(age=67, resident=False,
                                                                      carriers="ecard")
    qr = holder.phone.qr(NOW)
    outer = cbor2.loads(base45.b45decode(qr.removeprefix("ESSC1:")))
    level2 = cbor2.loads(outer.value[2])
    inner = cbor2.loads(level2[1])
    claims = cbor2.loads(inner.value[2])
    assert claims[2] == bytes.fromhex(holder.ref)
    assert claims["cn"] == holder.card_no and claims["rg"] == holder.region
    assert claims["bd"] == int(f"{holder.birth:%Y%m%d}")
    assert claims[6] <= NOW < claims[4]
    assert age_on(holder.birth, TODAY) == 67


def test_card_taps_count_up(keys: SimKeys, city: CityConfig) -> None:
    holder = Population(keys, city, seed=9, today=TODAY, now=NOW).make(age=40, carriers="card")
    assert holder.card is not None
    first = holder.card.tap("T-BUS-K1-001", NOW, "01020304")
    second = holder.card.tap("T-BUS-K1-001", NOW, "01020304")
    assert second["atc"] == int(first["atc"]) + 1
    assert first["cryptogram"] != second["cryptogram"]


@pytest.mark.parametrize(("birth", "day", "age"), [
    (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
    (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
    (dt.date(2008, 2, 29), dt.date(2028, 2, 29), 20),
    (dt.date(1956, 12, 2), dt.date(2026, 12, 1), 69),
    (dt.date(1956, 12, 2), dt.date(2026, 12, 2), 70),
])
def test_age_in_completed_years(birth: dt.date, day: dt.date, age: int) -> None:
    assert age_on(birth, day) == age


def test_exports(keys: SimKeys, city: CityConfig, tmp_path: Path) -> None:
    holders = _population(keys, city, seed=11, n=800)
    lines = [json.loads(line) for line in registry_lines(holders)]
    assert lines and all(set(doc) == {"holder_ref", "categories"} for doc in lines)
    assert len(lines) == sum(bool(h.categories) for h in holders)
    by_ssn = [json.loads(line) for line in registry_lines(holders, by="ssn")]
    assert all(set(doc) == {"ssn", "categories"} for doc in by_ssn)
    blocks = blocks_of(holders)
    assert {b.kind for b in blocks} <= {"card", "holder"}
    assert sum(b.kind == "card" for b in blocks) == sum(len(h.lost_cards) for h in holders)
    registry, block_file = write_exports(holders, tmp_path / "out")
    assert len(registry.read_text().splitlines()) == len(lines)
    assert len(block_file.read_text().splitlines()) == len(blocks)


def _ecard_algs(h: Holder) -> tuple[str, str]:
    """(issuer alg, device alg) of the holder's e-card, read from the QR's headers."""
    outer = cbor2.loads(base45.b45decode(h.phone.qr(NOW)[6:])).value
    inner = cbor2.loads(cbor2.loads(outer[2])[1]).value
    names = {-7: "ES256", -8: "EdDSA", -65700: "SM2"}
    return names[cbor2.loads(inner[0])[1]], names[cbor2.loads(outer[0])[1]]


def test_a_share_of_ecards_is_sm2_on_both_levels(sm2_keys: SimKeys, city: CityConfig) -> None:
    holders = Population(sm2_keys, city, seed=8, today=TODAY, now=NOW,
                         sm2_share=0.3).generate(1000)
    algs = [_ecard_algs(h) for h in holders if h.has_ecard]
    sm2 = [a for a in algs if "SM2" in a]
    assert all(a == ("SM2", "SM2") for a in sm2)  # never a mix: an all-SM2 e-card or none
    assert 0.25 < len(sm2) / len(algs) < 0.35, len(sm2) / len(algs)
    again = Population(sm2_keys, city, seed=8, today=TODAY, now=NOW,
                       sm2_share=0.3).generate(1000)
    pairs = [(a, b) for a, b in zip(holders, again, strict=True) if a.has_ecard][:40]
    assert [a.phone.device_private_key.public_key() for a, _ in pairs] == \
        [b.phone.device_private_key.public_key() for _, b in pairs]


def test_no_sm2_share_no_sm2_ecard(sm2_keys: SimKeys, city: CityConfig) -> None:
    holders = Population(sm2_keys, city, seed=9, today=TODAY, now=NOW).generate(300)
    assert not [h for h in holders if h.has_ecard and "SM2" in _ecard_algs(h)]


def test_an_sm2_share_needs_an_sm2_issuer_and_a_share(keys: SimKeys, sm2_keys: SimKeys,
                                                      city: CityConfig) -> None:
    with pytest.raises(ValueError, match="needs an SM2 issuer"):
        Population(keys, city, seed=1, sm2_share=0.1)
    for share in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="from 0 to 1"):
            Population(sm2_keys, city, seed=1, sm2_share=share)
