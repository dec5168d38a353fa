"""Inputs and outputs of the policy engine (policy.md). Plain values, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from validator.reasons import Message, Reason
from validator.values import value


class FareClass(StrEnum):
    FREE = "free"
    HALF = "half"
    FULL = "full"


FARE_ORDER = {FareClass.FREE: 0, FareClass.HALF: 1, FareClass.FULL: 2}


@dataclass(frozen=True, slots=True)
class Category:
    """An eligibility registry entry: `veteran`, or `disabled` with a grade 1–4.

    `until` is inclusive: the category holds through that local date; None = no expiry.
    """

    code: str
    grade: int | None = None
    until: dt.date | None = None

    def active_on(self, day: dt.date) -> bool:
        return self.until is None or day <= self.until


@value
class Usage:
    """What the holder has used so far today (local date), read from the state store."""

    concession_rides_today: int = 0  # age-based free/half bus rides today
    entered_today: bool = False  # a free or half entry at *this* spot today
    spot_entries_today: int = 0  # entries of every fare class at this spot today
    companion_primary: bool = False  # primary accept on this terminal < window, unused


@value
class PolicyInput:
    venue: str  # "bus:K1" | "spot:S01"
    at: dt.datetime  # timezone-aware; the engine converts to the city's local time
    birth_date: dt.date
    categories: tuple[Category, ...] = ()
    resident: bool = False
    companion: bool = False
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class Fare:
    fare_class: FareClass
    amount_fen: int
    standard_fen: int


@dataclass(frozen=True, slots=True)
class Offer:
    """One rule's offer, for the dry run's explanation."""

    rule: str
    fare: Fare
    categories: tuple[str, ...]
    age_based: bool = False


@value
class PolicyDecision:
    """The engine's answer, plus the state effects the commit must apply atomically."""

    accepted: bool
    reason: Reason  # Reason.OK on accept
    rule: str | None  # winning rule id; None on deny
    fare: Fare | None  # on accept only
    categories: tuple[str, ...]  # codes the winning rule relied on; () on deny
    message: Message
    age: int
    local_date: dt.date
    offers: tuple[Offer, ...] = ()
    # --- effects for the state store (all False on deny) ---
    concession_ride: bool = False  # bus: counts towards the daily age-based cap
    concession_entry: bool = False  # spot: free/half entry, sets "entered today"
    spot_entry: bool = False  # spot: counts towards the daily capacity
    companion_used: bool = False  # consumes the primary's companion window
    primary: bool = False  # accepted non-companion: opens a companion window
