"""The entitlement policy engine (docs/policy.md): pure code over configuration.

`PolicyEngine.evaluate` turns a `PolicyInput` (venue, time, holder facts, usage so far
today) into a `PolicyDecision`, including the effects the state store must commit. It
does no I/O and reads no clock: the caller passes the time and the usage. Everything
that depends only on configuration — each venue's fare, hours and capacity, its rules
with their offers prebuilt — is computed once at construction, because `evaluate` runs
for every validation.

The order of the checks is code; every value (ages, offers, windows, cap, prices,
hours) is configuration.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from validator.policy.calendar import Calendar
from validator.policy.model import City, Policy
from validator.policy.types import (
    FARE_ORDER,
    Category,
    FareClass,
    Offer,
    PolicyDecision,
    PolicyInput,
)
from validator.policy.venues import (
    CompiledCompanion,
    CompiledRule,
    CompiledVenue,
    Facts,
    VenueInfo,
    compile_venue,
    has_category,
    makes_offer,
)
from validator.reasons import DENY_MESSAGES, Reason

__all__ = ["PolicyEngine", "UnknownVenue", "VenueInfo", "age_on"]

_Winner = CompiledRule | CompiledCompanion


class UnknownVenue(ValueError):
    """Not a venue of the city: neither `bus:<route>` nor `spot:<id>` of city.toml."""


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years on `day`.

    Comparing (month, day) pairs makes a 29 February birthday fall on 1 March in common
    years: on 28 February, (2, 28) < (2, 29) and the year is not yet complete.
    """
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


class PolicyEngine:
    """Decides a scan from configuration alone; safe to share between tasks."""

    def __init__(self, city: City, calendar: Calendar, policy: Policy) -> None:
        self._city = city
        self._calendar = calendar
        self._policy = policy
        self._tz = zoneinfo.ZoneInfo(city.time_zone)
        self._resident_prefixes = tuple(city.resident_region_prefixes)
        self._cap = policy.bus.daily_concession_cap
        venues: dict[str, CompiledVenue] = {}
        for route in city.routes:
            info = VenueInfo(f"bus:{route.id}", "bus", route.operator, route.standard_fen)
            venues[info.venue] = compile_venue(info, policy.bus.rules, policy.bus.companion)
        for spot in city.spots:
            info = VenueInfo(
                venue=f"spot:{spot.id}",
                kind="spot",
                operator=spot.operator,
                standard_fen=spot.ticket_fen,
                capacity_per_day=spot.capacity_per_day,
                opens=spot.opens,
                closes=spot.closes,
            )
            venues[info.venue] = compile_venue(info, policy.spot.rules, policy.spot.companion)
        self._venues = venues
        self._day_kinds_cache: dict[dt.date, frozenset[str]] = {}

    # --- configuration the pipeline needs ---------------------------------------------

    @property
    def city(self) -> City:
        return self._city

    @property
    def calendar(self) -> Calendar:
        return self._calendar

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def version(self) -> str:
        return self._policy.version

    @property
    def daily_concession_cap(self) -> int:
        return self._cap

    @property
    def companion_window_s(self) -> int:
        return self._policy.companion_window_s

    @property
    def venues(self) -> tuple[VenueInfo, ...]:
        return tuple(v.info for v in self._venues.values())

    def venue_info(self, venue: str) -> VenueInfo:
        """Raises `UnknownVenue`."""
        return self._venue(venue).info

    def spot_capacity(self, spot_id: str) -> int:
        """Daily capacity of spot `spot_id` (the bare id, `S01`). Raises `UnknownVenue`."""
        capacity = self._venue(f"spot:{spot_id}").capacity_per_day
        if capacity is None:  # cannot happen: every spot has one (model.Spot)
            raise UnknownVenue(f"spot:{spot_id}")
        return capacity

    def standard_fare(self, venue: str) -> int:
        return self._venue(venue).info.standard_fen

    def operator_of(self, venue: str) -> str:
        return self._venue(venue).info.operator

    def local_datetime(self, at: dt.datetime) -> dt.datetime:
        """`at` in the city's time zone. Raises ValueError for a naive datetime."""
        if at.tzinfo is self._tz:  # already local (the pipeline converts once)
            return at
        if at.utcoffset() is None:
            raise ValueError("a timezone-aware datetime is required")
        return at.astimezone(self._tz)

    def local_date(self, unix_s: float) -> dt.date:
        return dt.datetime.fromtimestamp(unix_s, self._tz).date()

    def local_from_unix(self, unix_s: float) -> dt.datetime:
        """Unix time as an aware datetime in the city's time zone."""
        return dt.datetime.fromtimestamp(unix_s, self._tz)

    def is_resident(self, region: str) -> bool:
        return region.startswith(self._resident_prefixes)

    @staticmethod
    def age_on(birth_date: dt.date, day: dt.date) -> int:
        return age_on(birth_date, day)

    # --- the decision ---------------------------------------------------------------

    def evaluate(self, inp: PolicyInput) -> PolicyDecision:
        """Decide one scan. Raises `UnknownVenue`, or ValueError for a naive `inp.at`."""
        venue = self._venue(inp.venue)
        local = self.local_datetime(inp.at)
        day, now = local.date(), local.time()
        age = age_on(inp.birth_date, day)
        active = inp.categories and tuple(
            c for c in inp.categories if c.until is None or day <= c.until
        )
        winner: _Winner | None
        offers: tuple[Offer, ...]
        if inp.companion:
            winner = self._companion_winner(venue.companion, active, inp.usage.companion_primary)
            offers = () if winner is None else (winner.offer,)
        else:
            capped_out = inp.usage.concession_rides_today >= self._cap
            facts = Facts(age, now, self._day_kinds(day), active, inp.resident, capped_out)
            # Never empty: every venue has an unconditional rule (checked by the schema at
            # load and again by compile_venue), and it offers whatever the facts are.
            matching = [rule for rule in venue.rules if makes_offer(rule, facts)]
            offers = tuple(rule.offer for rule in matching)
            # min() keeps the first of equals: the first listed rule wins a tie.
            winner = min(matching, key=lambda rule: FARE_ORDER[rule.offer.fare.fare_class])
        reason = _deny_reason(venue, now, inp, winner)
        if reason is None and winner is not None:
            return _accept(venue.info, inp.companion, winner, age, day, offers)
        # winner is None only for a companion that _deny_reason already turned away
        reason = reason or Reason.COMPANION_NOT_ALLOWED
        return PolicyDecision(
            False, reason, None, None, (), DENY_MESSAGES[reason], age, day, offers
        )

    def _venue(self, venue: str) -> CompiledVenue:
        try:
            return self._venues[venue]
        except KeyError:
            raise UnknownVenue(venue) from None

    def _day_kinds(self, day: dt.date) -> frozenset[str]:
        kinds = self._day_kinds_cache.get(day)
        if kinds is None:
            working = "working" if self._calendar.is_working_day(day) else "non_working"
            holiday = ("holiday",) if self._calendar.is_holiday(day) else ()
            kinds = frozenset(("any", working, *holiday))
            if len(self._day_kinds_cache) >= 64:  # scans cluster on today; stay bounded
                self._day_kinds_cache.clear()
            self._day_kinds_cache[day] = kinds
        return kinds

    @staticmethod
    def _companion_winner(
        rule: CompiledCompanion | None, categories: tuple[Category, ...], primary_open: bool
    ) -> CompiledCompanion | None:
        if rule is None or not primary_open:
            return None
        return rule if has_category(categories, rule.category, rule.grades) else None


def _deny_reason(
    venue: CompiledVenue, now: dt.time, inp: PolicyInput, winner: _Winner | None
) -> Reason | None:
    """The first failed check of policy.md, in its order; None when the scan passes.

    Hours and capacity apply to companions too; "already entered" does not.
    """
    if venue.hours is not None and not venue.hours[0] <= now < venue.hours[1]:
        return Reason.VENUE_CLOSED
    if venue.capacity_per_day is not None and (
        inp.usage.spot_entries_today >= venue.capacity_per_day
    ):
        return Reason.CAPACITY_REACHED
    if inp.companion:
        return None if winner is not None else Reason.COMPANION_NOT_ALLOWED
    if (
        venue.info.kind == "spot"
        and inp.usage.entered_today
        and winner is not None
        and winner.offer.fare.fare_class is not FareClass.FULL
    ):
        return Reason.ALREADY_ENTERED_TODAY
    return None


def _accept(
    info: VenueInfo,
    companion: bool,
    winner: _Winner,
    age: int,
    day: dt.date,
    offers: tuple[Offer, ...],
) -> PolicyDecision:
    fare = winner.offer.fare
    concession = fare.fare_class is not FareClass.FULL
    spot = info.kind == "spot"
    return PolicyDecision(
        accepted=True,
        reason=Reason.OK,
        rule=winner.offer.rule,
        fare=fare,
        categories=winner.offer.categories,
        message=winner.message,
        age=age,
        local_date=day,
        offers=offers,
        concession_ride=isinstance(winner, CompiledRule) and winner.capped and concession,
        concession_entry=spot and not companion and concession,
        spot_entry=spot,
        companion_used=companion,
        primary=not companion,
    )
