"""Expected decisions by construction: `docs/policy.md` v1 plus the usage seen so far.

The oracle knows only what the documents say and what the simulator itself sent and
was answered: it never asks the validator's engine. Venue data, hours and the calendar
come from the configuration (`cityconf`); the rules, their order, their offers and the
categories a rule reports are those of policy.md v1, written out below.

Usage state (rides today, free entries today, the companion window, spot counts) is
updated from the *actual* responses (`observe`), so one wrong answer shows up once
rather than cascading into every later expectation.

Capacity: the simulator does not know how many entries a spot had before it started.
Unless a scenario tells it (`set_baseline`, e.g. from the settlement report), a
`capacity_reached` is an acceptable alternative at any spot, and once seen it is the
only acceptable answer there for the rest of the day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from terminals_sim.cityconf import CityConfig, TerminalSpec
from terminals_sim.expect import Expected
from terminals_sim.population import Holder

__all__ = ["Offer", "Oracle"]

_FARE_ORDER = {"free": 0, "half": 1, "full": 2}
_PEAKS = ((dt.time(7), dt.time(9)), (dt.time(17), dt.time(19)))  # bus.senior_65 no-offer


@dataclass(frozen=True)
class Offer:
    rule: str
    fare_class: str
    categories: tuple[str, ...]


def _best(offers: list[Offer]) -> Offer:
    """Cheapest offer, the first listed winning ties (min is stable)."""
    return min(offers, key=lambda o: _FARE_ORDER[o.fare_class])


def _amount(fare_class: str, standard_fen: int) -> int:
    return {"free": 0, "half": standard_fen // 2, "full": standard_fen}[fare_class]


@dataclass
class _Primary:
    at: float
    companion_used: bool = False


class Oracle:
    """policy.md v1 for one city configuration, with the usage this run has caused."""

    def __init__(self, city: CityConfig, *, registry_loaded: bool) -> None:
        self.city = city
        # Without the registry (no admin token, no store), the service knows no
        # categories and no blocks: a veteran is just a holder of some age.
        self.registry_loaded = registry_loaded
        self.concession_rides: dict[tuple[str, dt.date], int] = defaultdict(int)
        self.entered: set[tuple[str, str, dt.date]] = set()
        self.primaries: dict[tuple[str, str], _Primary] = {}
        self.spot_seen: dict[tuple[str, dt.date], int] = defaultdict(int)
        self.spot_full: set[tuple[str, dt.date]] = set()
        self.baselines: dict[tuple[str, dt.date], int] = {}
        self.blocked_cards: set[str] = set()

    # --- what the policy offers -------------------------------------------------------

    def offers(self, holder: Holder, terminal: TerminalSpec, local: dt.datetime) -> list[Offer]:
        """Every rule of policy.md that makes an offer, in the listed order."""
        day = local.date()
        codes = {c.code for c in holder.active_categories(day)} if self.registry_loaded else set()
        age = holder.age(day)
        found = []
        kind = terminal.venue.split(":")[0]
        if "veteran" in codes:
            found.append(Offer(f"{kind}.veteran", "free", ("veteran",)))
        if "disabled" in codes:
            found.append(Offer(f"{kind}.disabled", "free", ("disabled",)))
        if kind == "bus":
            found += self._bus_senior_offers(holder, age, local)
            found.append(Offer("bus.standard", "full", ()))
            return found
        if age >= 65:
            found.append(Offer("spot.senior_65", "free", ("senior",)))
        elif age >= 60:
            found.append(Offer("spot.senior_60", "half", ("senior",)))
        if holder.resident and not self.city.calendar.is_holiday(day):
            found.append(Offer("spot.resident", "free", ("resident",)))
        found.append(Offer("spot.standard", "full", ()))
        return found

    def _bus_senior_offers(self, holder: Holder, age: int, local: dt.datetime) -> list[Offer]:
        if self.concession_rides[(holder.ref, local.date())] >= self.city.daily_concession_cap:
            return []
        if age >= 70:
            return [Offer("bus.senior_70", "free", ("senior",))]
        if age >= 65:
            peak = self.city.calendar.is_working_day(local.date()) and any(
                start <= local.time() < end for start, end in _PEAKS)
            return [] if peak else [Offer("bus.senior_65", "free", ("senior",))]
        if age >= 60:
            return [Offer("bus.senior_60", "half", ("senior",))]
        return []

    # --- the decision ----------------------------------------------------------------

    def expect(self, holder: Holder, terminal: TerminalSpec, at: float, *,
               companion: bool = False, card_no: str | None = None) -> list[Expected]:
        """Acceptable answers to a valid credential of `holder` scanned at `at` (server
        time); `card_no` is the card the credential names (a lost card is blocked)."""
        if self.registry_loaded and (card_no or holder.card_no) in self.blocked_cards:
            return [Expected.deny("card_blocked")]
        if self.registry_loaded and holder.blocked:
            return [Expected.deny("holder_blocked")]
        local = self.city.local(at)
        if terminal.kind == "bus":
            standard = self.city.routes[terminal.venue_id]
            if companion:
                return [self._companion(holder, terminal, at, "bus.companion", standard)]
            best = _best(self.offers(holder, terminal, local))
            return [_accept(best, standard)]
        return self._spot(holder, terminal, at, local, companion)

    def _spot(self, holder: Holder, terminal: TerminalSpec, at: float, local: dt.datetime,
              companion: bool) -> list[Expected]:
        spot = self.city.spots[terminal.venue_id]
        key = (spot.id, local.date())
        if not spot.is_open(local):
            return [Expected.deny("venue_closed")]
        full = Expected.deny("capacity_reached")
        seen_before = self.baselines.get(key, 0) + self.spot_seen[key]
        if key in self.spot_full or seen_before >= spot.capacity_per_day:
            return [full]
        if companion:
            answer = self._companion(holder, terminal, at, "spot.companion", spot.ticket_fen)
        else:
            best = _best(self.offers(holder, terminal, local))
            entered = (holder.ref, spot.id, local.date()) in self.entered
            answer = (Expected.deny("already_entered_today")
                      if entered and best.fare_class != "full" else _accept(best, spot.ticket_fen))
        return [answer] if key in self.baselines else [answer, full]

    def _companion(self, holder: Holder, terminal: TerminalSpec, at: float, rule: str,
                   standard_fen: int) -> Expected:
        day = self.city.local(at).date()
        grades = {c.grade for c in holder.active_categories(day) if c.code == "disabled"}
        primary = self.primaries.get((holder.ref, terminal.id))
        eligible = (self.registry_loaded and bool(grades & {1, 2}) and primary is not None
                    and not primary.companion_used
                    and at - primary.at <= self.city.companion_window_s)
        if not eligible:
            return Expected.deny("companion_not_allowed")
        return Expected.accept(rule, "free", 0, standard_fen, ("disabled",))

    # --- learning from answers ---------------------------------------------------------

    def observe(self, holder: Holder, terminal: TerminalSpec, at: float, *, companion: bool,
                status: int, body: Mapping[str, Any]) -> None:
        """Update the usage state from the service's actual answer."""
        if status != 200:
            return
        local = self.city.local(at)
        key = (terminal.venue_id, local.date())
        if body.get("reason") == "capacity_reached":
            self.spot_full.add(key)
        if body.get("decision") != "accept":
            return
        rule = str(body.get("rule"))
        fare_class = (body.get("fare") or {}).get("class")
        if terminal.kind == "gate":
            self.spot_seen[key] += 1
            if fare_class in ("free", "half") and not companion:
                self.entered.add((holder.ref, terminal.venue_id, local.date()))
        elif rule.startswith("bus.senior") and fare_class in ("free", "half"):
            self.concession_rides[(holder.ref, local.date())] += 1
        slot = (holder.ref, terminal.id)
        if companion:
            if slot in self.primaries:
                self.primaries[slot].companion_used = True
        else:
            self.primaries[slot] = _Primary(at)

    def entries(self, spot_id: str, day: dt.date) -> int:
        """Entries at the spot on `day` as far as this run knows (baseline included)."""
        return self.baselines.get((spot_id, day), 0) + self.spot_seen.get((spot_id, day), 0)

    def forget_before(self, day: dt.date, now: float) -> None:
        """Drop the usage of earlier local days and companion windows long closed: a demo
        runs for days, and the policy's counters are per local day anyway."""
        for table in (self.concession_rides, self.spot_seen, self.baselines):
            for key in [k for k in table if k[1] < day]:
                del table[key]
        self.entered = {k for k in self.entered if k[2] >= day}
        self.spot_full = {k for k in self.spot_full if k[1] >= day}
        window = self.city.companion_window_s
        self.primaries = {k: p for k, p in self.primaries.items() if now - p.at <= window}

    def set_baseline(self, spot_id: str, day: dt.date, entries: int) -> None:
        """The spot's entries today as the service reports them now (settlement), which
        makes capacity expectations exact instead of learned."""
        self.baselines[(spot_id, day)] = entries - self.spot_seen[(spot_id, day)]


def _accept(offer: Offer, standard_fen: int) -> Expected:
    return Expected.accept(offer.rule, offer.fare_class, _amount(offer.fare_class, standard_fen),
                           standard_fen, offer.categories)
