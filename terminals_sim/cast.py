"""The named holders the scenarios rely on, made once and registered together.

Each scenario run draws a fresh cast (a new seed unless one is given), so counters the
service keeps per holder and day (rides, entries, replays) start from zero even when
the scenarios run twice against the same service on the same day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from terminals_sim.population import Category, Holder, Population

__all__ = ["Cast", "build_cast"]


@dataclass(frozen=True)
class Cast:
    adult: Holder  # 30, resident, card + e-card
    adult_card: Holder  # 30, resident, card only
    visitor: Holder  # 30, visitor, e-card only
    visitor_senior60: Holder  # 61, visitor, e-card (policy.md: S12 half price)
    senior60: Holder  # 62, resident
    senior65: Holder  # 67, resident: peak-hour rule
    senior70: Holder  # 72, resident, card
    senior_cap: Holder  # 75, resident, card: daily concession cap
    veteran: Holder  # 45, veteran
    veteran65: Holder  # 67, veteran: free even at peak
    disabled1: Holder  # 35, disabled grade 1 (companion at spots)
    disabled2: Holder  # 40, disabled grade 2 (companion on buses)
    disabled3: Holder  # 40, disabled grade 3 (no companion)
    disabled_lapsed: Holder  # 40, disabled grade 1 that ended yesterday
    lost: Holder  # 50, lost a card: the old one is blocked, a new one issued
    suspended: Holder  # 50, holder-level block
    skimmed: Holder  # 40, card that gets cloned
    fillers: tuple[Holder, ...]  # visitors at full price, to fill a spot to capacity
    crowd: tuple[Holder, ...]  # a realistic mix for normal traffic

    def everyone(self) -> list[Holder]:
        named = [v for k, v in vars(self).items() if isinstance(v, Holder)]
        return named + list(self.fillers) + list(self.crowd)


def build_cast(pop: Population, *, crowd: int = 40, fillers: int = 4) -> Cast:
    """Make the cast from `pop` (cards need the city's master key, e-cards an issuer)."""
    yesterday = pop.today - dt.timedelta(days=1)
    next_year = pop.today + dt.timedelta(days=365)
    return Cast(
        adult=pop.make(age=30),
        adult_card=pop.make(age=30, carriers="card"),
        visitor=pop.make(age=30, resident=False, carriers="ecard"),
        visitor_senior60=pop.make(age=61, resident=False, carriers="ecard"),
        senior60=pop.make(age=62),
        senior65=pop.make(age=67),
        senior70=pop.make(age=72, carriers="card"),
        senior_cap=pop.make(age=75, carriers="card"),
        veteran=pop.make(age=45, categories=(Category("veteran"),)),
        veteran65=pop.make(age=67, categories=(Category("veteran", until=next_year),)),
        disabled1=pop.make(age=35, categories=(Category("disabled", grade=1),)),
        disabled2=pop.make(age=40, categories=(Category("disabled", grade=2, until=next_year),)),
        disabled3=pop.make(age=40, categories=(Category("disabled", grade=3),)),
        disabled_lapsed=pop.make(age=40, categories=(
            Category("disabled", grade=1, until=yesterday),)),
        lost=pop.make(age=50, lost_cards=1),
        suspended=pop.make(age=50, carriers="card", blocked=True),
        skimmed=pop.make(age=40, carriers="card"),
        fillers=tuple(pop.make(age=30 + i, resident=False, carriers="ecard")
                      for i in range(fillers)),
        crowd=tuple(pop.generate(crowd)),
    )
