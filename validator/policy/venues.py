"""Each venue of the city with its fare, hours, capacity and rules, compiled once.

The policy's rules are written per venue kind; the engine needs them per venue, with
the offer's fare already computed from the venue's standard fare, the age bounds and
windows in the shape that is cheapest to test. `makes_offer` is that test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from validator.policy.model import CompanionRule, Rule
from validator.policy.types import Category, Fare, FareClass, Offer
from validator.reasons import Message

VenueKind = Literal["bus", "spot"]


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """What the configuration says about one venue."""

    venue: str  # "bus:K1" | "spot:S01"
    kind: VenueKind
    operator: str
    standard_fen: int  # the route's fare or the spot's ticket price
    capacity_per_day: int | None = None  # spots only
    opens: dt.time | None = None  # spots only; entry from `opens` (incl.)
    closes: dt.time | None = None  # to `closes` (excl.)


def fare_for(fare_class: FareClass, standard_fen: int) -> Fare:
    amounts = {FareClass.FREE: 0, FareClass.HALF: standard_fen // 2, FareClass.FULL: standard_fen}
    return Fare(fare_class, amounts[fare_class], standard_fen)


# (day kind, from incl., to excl.); no times = the whole day
Window = tuple[str, dt.time | None, dt.time | None]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule compiled for one venue: its offer carries that venue's fare."""

    offer: Offer
    message: Message
    category: str | None
    grades: frozenset[int] | None
    min_age: int | None  # None, not 0: a rule without bounds offers to any age
    max_age: int | None
    resident: bool | None
    windows: tuple[Window, ...]
    capped: bool  # counts towards, and stops at, the daily age-based cap

    @classmethod
    def compile(cls, rule: Rule, kind: VenueKind, standard_fen: int) -> CompiledRule:
        fare = fare_for(rule.offer, standard_fen)
        return cls(
            offer=Offer(rule.id, fare, rule.relies_on, rule.age_based),
            message=Message(rule.message.zh, rule.message.en),
            category=rule.category,
            grades=None if rule.grades is None else frozenset(rule.grades),
            min_age=rule.min_age,
            max_age=rule.max_age,
            resident=rule.resident,
            windows=tuple((w.days, w.start, w.end) for w in rule.no_offer),
            capped=kind == "bus" and rule.age_based,
        )


@dataclass(frozen=True, slots=True)
class CompiledCompanion:
    """The companion rule compiled for one venue."""

    offer: Offer
    message: Message
    category: str
    grades: frozenset[int] | None

    @classmethod
    def compile(cls, rule: CompanionRule, standard_fen: int) -> CompiledCompanion:
        return cls(
            offer=Offer(rule.id, fare_for(rule.offer, standard_fen), rule.relies_on),
            message=Message(rule.message.zh, rule.message.en),
            category=rule.category,
            grades=None if rule.grades is None else frozenset(rule.grades),
        )


@dataclass(frozen=True, slots=True)
class CompiledVenue:
    """A venue and everything `evaluate` needs about it."""

    info: VenueInfo
    rules: tuple[CompiledRule, ...]
    companion: CompiledCompanion | None
    hours: tuple[dt.time, dt.time] | None = None  # entry from [0] (incl.) to [1] (excl.)
    capacity_per_day: int | None = None


@dataclass(slots=True)  # not frozen: it lives for one evaluation, and frozen inits are slow
class Facts:
    """What the rules look at, computed once per evaluation."""

    age: int
    time: dt.time
    day_kinds: frozenset[str]  # "any", "working" or "non_working", and maybe "holiday"
    categories: tuple[Category, ...]  # active on the local date
    resident: bool
    capped_out: bool  # the daily age-based cap is reached


def has_category(
    categories: tuple[Category, ...], code: str, grades: frozenset[int] | None
) -> bool:
    return any(
        c.code == code and (grades is None or c.grade in grades) for c in categories
    )


def makes_offer(rule: CompiledRule, facts: Facts) -> bool:
    if (rule.min_age is not None and facts.age < rule.min_age) or (
        rule.max_age is not None and facts.age >= rule.max_age
    ):
        return False
    if rule.category is not None and not (
        facts.categories and has_category(facts.categories, rule.category, rule.grades)
    ):
        return False
    if rule.resident is not None and rule.resident != facts.resident:
        return False
    if rule.capped and facts.capped_out:
        return False
    return not rule.windows or not any(
        days in facts.day_kinds and (start is None or end is None or start <= facts.time < end)
        for days, start, end in rule.windows
    )


def compile_venue(
    info: VenueInfo, rules: tuple[Rule, ...], companion: CompanionRule | None
) -> CompiledVenue:
    """Raises ValueError if no rule is unconditional: `PolicyEngine.evaluate` relies on
    one rule offering to every primary scan (the schema refuses such a policy at load;
    this keeps an engine built any other way from ever having no winner)."""
    if not any(rule.unconditional for rule in rules):
        raise ValueError(f"{info.kind}: no unconditional rule (the standard fare)")
    hours = None
    if info.opens is not None and info.closes is not None:
        hours = (info.opens, info.closes)
    standard_fen = info.standard_fen
    return CompiledVenue(
        info=info,
        rules=tuple(CompiledRule.compile(rule, info.kind, standard_fen) for rule in rules),
        companion=None if companion is None else CompiledCompanion.compile(companion, standard_fen),
        hours=hours,
        capacity_per_day=info.capacity_per_day,
    )
