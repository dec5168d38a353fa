"""A synthetic, reproducible holder population, personalised from a key set.

`Population(keys, city, seed=…, today=…)` draws holders from one `random.Random(seed)`:
the same seed and day give the same SSNs, ages, categories, card numbers and device
keys. Holders are made one at a time by `Population.make`, which scenarios also call to
get exactly the holder they need (a 67-year-old resident with a card, a grade-2 disabled
visitor with an e-card, …); `Population.generate(n)` draws a realistic mix:

- age: ~12 % under 18, ~68 % 18–59, ~20 % over 60 (8 % 60–64, 6 % 65–69, 6 % 70+);
- ~75 % residents (SSN region 3699xx, cards from the city), the rest visitors;
- ~3 % veterans, ~3 % disabled (grade 1–4, a third with an `until`, some already past);
- ~2 % of card holders lost a card: the old card_no is blocked, a new card issued;
- ~0.5 % blocked holders.

Carriers: a physical card needs a master key for its region in the key set, so visitors
from other regions carry only an e-card; residents carry a card, an e-card, or both.
E-cards are issued lazily (on first use) since each costs an issuer signature.

National algorithm (protocol §2.1): a share `sm2_share` of e-card holders (0 unless
given) holds an SM2 device key certified by an SM2 issuer of the key set; the others
get an ES256 or EdDSA device key from one of its other issuers. The mixes (an SM2
issuer certifying an ES256 key, and the other way round) are the fault scenarios'.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.cityconf import CityConfig
from terminals_sim.ecard import Alg, Issuer, Phone, PrivateKey
from terminals_sim.keyset import SimKeys
from terminals_sim.sm2keys import ORDER as SM2_ORDER
from terminals_sim.sm2keys import Sm2PrivateKey

__all__ = ["Category", "Holder", "Population", "age_on", "has_sm2_issuer"]

Carriers = Literal["card", "ecard", "both"]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_VISITOR_REGIONS = ("110105", "310115", "440106", "510107", "330106", "320102", "420111")
_CARD_NO_CHARS = string.ascii_uppercase + string.digits
ECARD_VALIDITY_S = 30 * 86400


@dataclass(frozen=True)
class Category:
    """One eligibility-registry entry (protocol §5); `until` is inclusive."""

    code: Literal["veteran", "disabled"]
    grade: int | None = None
    until: dt.date | None = None

    def active(self, day: dt.date) -> bool:
        return self.until is None or day <= self.until

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"code": self.code}
        if self.grade is not None:
            doc["grade"] = self.grade
        if self.until is not None:
            doc["until"] = self.until.isoformat()
        return doc


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on `day`; a 29 February birthday falls on 1 March in common years."""
    years = day.year - birth.year
    birthday = (birth.month, birth.day)
    if birthday == (2, 29) and not _is_leap(day.year):
        birthday = (3, 1)
    return years - ((day.month, day.day) < birthday)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@dataclass(eq=False)
class Holder:
    """A synthetic holder with whatever carriers they own. `ssn` never leaves the simulator
    except in `ssc_card` taps and the optional `ssn` NDJSON export."""

    ssn: str = field(repr=False)
    ref: str
    birth: dt.date
    region: str  # 发卡地 of the card and the e-card's `rg`: residency comes from it
    resident: bool
    categories: tuple[Category, ...] = ()
    card: Card | None = None
    lost_cards: tuple[Card, ...] = ()  # reported lost: their card_no is on the block list
    card_no: str = ""  # the current card number, bound into the e-card (`cn`)
    has_ecard: bool = False
    blocked: bool = False  # holder-level block (protocol §5 blocked-holders)
    _issue: tuple[Issuer, bytes, Alg, int] | None = field(default=None, repr=False)

    def age(self, day: dt.date) -> int:
        return age_on(self.birth, day)

    def active_categories(self, day: dt.date) -> list[Category]:
        return [c for c in self.categories if c.active(day)]

    @cached_property
    def phone(self) -> Phone:
        """The phone with a level-1 credential, issued on first use (one signature)."""
        if self._issue is None:
            raise LookupError("this holder has no e-card")
        issuer, seed, alg, iat = self._issue
        device = _device_key(alg, seed)
        level1 = issuer.issue(
            bytes.fromhex(self.ref), int(f"{self.birth:%Y%m%d}"), self.card_no, self.region,
            device.public_key(), iat, iat + ECARD_VALIDITY_S)
        return Phone(level1, device, alg)


def _device_key(alg: Alg, seed: bytes) -> PrivateKey:
    """A device key derived from seed bytes, so a seeded population is reproducible."""
    if alg == "EdDSA":
        return Ed25519PrivateKey.from_private_bytes(seed)
    if alg == "SM2":  # a scalar in [1, n-2]: SM2 signing needs 1 + d invertible
        scalar = int.from_bytes(seed, "big") % (SM2_ORDER - 2) + 1
        return Sm2PrivateKey.from_bytes(scalar.to_bytes(32, "big"))
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def has_sm2_issuer(keys: SimKeys) -> bool:
    """Whether the key set can issue SM2 e-cards."""
    return any(i.alg == "SM2" for i in keys.issuers)


class Population:
    """A factory of holders sharing one seeded random source and one key set."""

    def __init__(self, keys: SimKeys, city: CityConfig, *, seed: int,
                 today: dt.date | None = None, now: int | None = None,
                 sm2_share: float = 0.0) -> None:
        if not 0 <= sm2_share <= 1:
            raise ValueError(f"the SM2 share is from 0 to 1, got {sm2_share:g}")
        if sm2_share > 0 and not has_sm2_issuer(keys):
            raise ValueError("an SM2 share needs an SM2 issuer key in the key set "
                             "(`python -m validator keys init` writes one)")
        self.keys, self.city, self.seed = keys, city, seed
        self.sm2_share = sm2_share
        self.rng = random.Random(seed)
        self.now = int(time.time()) if now is None else now
        self.today = today or city.local(self.now).date()
        self.holders: list[Holder] = []
        self._ssns: set[str] = set()
        self._card_nos: set[str] = set()

    # --- one holder ------------------------------------------------------------------

    def make(self, *, age: int, resident: bool = True, carriers: Carriers = "both",
             categories: tuple[Category, ...] = (), lost_cards: int = 0,
             blocked: bool = False, region: str | None = None,
             sm2: bool | None = None) -> Holder:
        """A new holder aged `age` today, personalised with the requested carriers.

        `sm2`: an all-SM2 e-card (True), none (False), or drawn by `sm2_share` (None).
        A carrier the key set cannot make (a card for a region without a master key, an
        e-card without an issuer key) raises `LookupError`.
        """
        home = region or (self.city.region if resident else self.rng.choice(_VISITOR_REGIONS))
        ssn = self._new_ssn(home, age)
        card_region = self._card_region(resident, home)
        holder = Holder(ssn=ssn, ref=self.keys.holder_ref(ssn), birth=_birth_of(ssn),
                        region=card_region, resident=self.city.is_resident_region(card_region),
                        categories=categories, blocked=blocked)
        if carriers in ("card", "both"):
            holder.lost_cards = tuple(self._new_card(holder) for _ in range(lost_cards))
            holder.card = self._new_card(holder)
            holder.card_no = holder.card.card_no
        else:
            holder.card_no = self._new_card_no()
        if carriers in ("ecard", "both"):
            holder._issue = self._issue(sm2)
            holder.has_ecard = True
        self.holders.append(holder)
        return holder

    def _issue(self, sm2: bool | None) -> tuple[Issuer, bytes, Alg, int]:
        """Issuer, device-key seed, device algorithm and issue time of a new e-card."""
        if not self.keys.issuers:
            raise LookupError("the key set has no issuer private key: no e-cards")
        if sm2 is None:  # no draw at share 0, so such a population spends no randomness
            sm2 = self.sm2_share > 0 and self.rng.random() < self.sm2_share
        national = [i for i in self.keys.issuers if i.alg == "SM2"]
        if sm2 and not national:
            raise LookupError("the key set has no SM2 issuer private key: no SM2 e-cards")
        others = [i for i in self.keys.issuers if i.alg != "SM2"] or national
        issuer = self.rng.choice(national if sm2 else others)
        alg: Alg = "SM2" if sm2 else self.rng.choice(("ES256", "EdDSA"))
        iat = self.now - self.rng.randrange(3600, 20 * 86400)
        return issuer, self.rng.randbytes(32), alg, iat

    def _card_region(self, resident: bool, home: str) -> str:
        """发卡地: the city for residents; a visitor's home prefecture (xxxx00)."""
        return self.city.region if resident else home[:4] + "00"

    def _new_ssn(self, birth_region: str, age: int) -> str:
        # SSN region is the birthplace: residents are spread over the city's districts.
        if birth_region == self.city.region:
            birth_region = birth_region[:4] + f"{self.rng.randrange(0, 30):02d}"
        while True:
            birth = self.today - dt.timedelta(days=365 * age + self.rng.randrange(1, 364))
            if age_on(birth, self.today) != age:  # leap-day drift: nudge into the year
                birth = _shift_to_age(birth, age, self.today)
            ssn = make_ssn(birth_region, birth, self.rng.randrange(1000),
                           self.rng.choice(("M", "F")))
            if ssn not in self._ssns:
                self._ssns.add(ssn)
                return ssn

    def _new_card_no(self) -> str:
        while True:
            card_no = "".join(self.rng.choices(_CARD_NO_CHARS, k=9))
            if card_no not in self._card_nos:
                self._card_nos.add(card_no)
                return card_no

    def _new_card(self, holder: Holder) -> Card:
        kv = self.keys.card_regions().get(holder.region)
        if kv is None:
            raise LookupError(f"no card master key for region {holder.region}")
        issued = self.today - dt.timedelta(days=self.rng.randrange(30, 8 * 365))
        return Card(region=holder.region, ssn=holder.ssn, card_no=self._new_card_no(),
                    card_id=card_id_for(holder.region, self.rng.getrandbits(63)),
                    issued=f"{issued:%Y%m%d}",
                    expires=f"{_ten_years_after(issued):%Y%m%d}",
                    kv=kv, master_key=self.keys.master_keys[(holder.region, kv)],
                    atc=self.rng.randrange(0, 400))

    # --- a realistic mix ------------------------------------------------------------

    def generate(self, n: int) -> list[Holder]:
        """Draw `n` holders with the mix of the module docstring."""
        return [self._draw() for _ in range(n)]

    def _draw(self) -> Holder:
        rng = self.rng
        age = _draw_age(rng)
        resident = rng.random() < 0.75
        home = self.city.region if resident else rng.choice(_VISITOR_REGIONS)
        carriers: Carriers = "ecard"
        if self._card_region(resident, home) in self.keys.card_regions():
            carriers = rng.choices(("both", "card", "ecard"), weights=(70, 20, 10))[0]
        if not self.keys.issuers:
            carriers = "card"
        return self.make(age=age, resident=resident, carriers=carriers, region=home,
                         categories=self._draw_categories(),
                         lost_cards=int(carriers != "ecard" and rng.random() < 0.02),
                         blocked=rng.random() < 0.005)

    def _draw_categories(self) -> tuple[Category, ...]:
        rng, found = self.rng, []
        if rng.random() < 0.03:
            found.append(Category("veteran"))
        if rng.random() < 0.03:
            until = None
            if rng.random() < 0.33:  # one in ten of those already lapsed
                until = self.today + dt.timedelta(days=rng.randrange(-200, 1800))
            found.append(Category("disabled", grade=rng.randint(1, 4), until=until))
        return tuple(found)


def _draw_age(rng: random.Random) -> int:
    band = rng.choices(("child", "adult", "60", "65", "70"), weights=(12, 68, 8, 6, 6))[0]
    low, high = {"child": (6, 17), "adult": (18, 59), "60": (60, 64), "65": (65, 69),
                 "70": (70, 92)}[band]
    return rng.randint(low, high)


def _ten_years_after(day: dt.date) -> dt.date:
    return dt.date(day.year + 10, day.month, min(day.day, 28))


def _birth_of(ssn: str) -> dt.date:
    return dt.date(int(ssn[6:10]), int(ssn[10:12]), int(ssn[12:14]))


def _shift_to_age(birth: dt.date, age: int, today: dt.date) -> dt.date:
    step = dt.timedelta(days=1 if age_on(birth, today) > age else -1)
    while age_on(birth, today) != age:
        birth += step
    return birth
