"""The policy engine against the default configuration in `config/` (docs/policy.md).

First every worked example of policy.md, then each rule's edges: peak windows, makeup
workdays and holidays, the daily cap, companions, `until` dates, 29 February birthdays,
spot hours, capacity, "already entered" and the order in which ties are broken.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from validator.config_folder import load_config
from validator.policy.engine import PolicyEngine, UnknownVenue, age_on
from validator.policy.types import Category, FareClass, PolicyDecision, PolicyInput, Usage
from validator.reasons import DENY_MESSAGES, Message, Reason

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
CITY_TZ = ZoneInfo("Asia/Shanghai")

VETERAN = Category("veteran")
DISABLED_1 = Category("disabled", 1)
DISABLED_2 = Category("disabled", 2)
DISABLED_3 = Category("disabled", 3)
PRIMARY_OPEN = Usage(companion_primary=True)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return load_config(CONFIG_DIR).engine


def local(when: str) -> dt.datetime:
    """'2026-12-02 08:10[:ss]' as an aware datetime in the city's time zone."""
    return dt.datetime.fromisoformat(when).replace(tzinfo=CITY_TZ)


def scan(engine: PolicyEngine, venue: str, when: str, age: int, **kw: Any) -> PolicyDecision:
    """Evaluate a holder of `age` completed years on the scan's local date."""
    at = local(when)
    birth = dt.date(at.year - age, 1, 1)  # 1 January: `age` all year long
    return engine.evaluate(PolicyInput(venue=venue, at=at, birth_date=birth, **kw))


def assert_accept(decision: PolicyDecision, rule: str, fare_class: str, amount: int) -> None:
    assert decision.accepted, decision.reason
    assert decision.reason is Reason.OK
    assert decision.rule == rule
    assert decision.fare is not None
    assert (decision.fare.fare_class, decision.fare.amount_fen) == (fare_class, amount)


def assert_deny(decision: PolicyDecision, reason: Reason) -> None:
    assert not decision.accepted
    assert decision.reason is reason
    assert decision.rule is None and decision.fare is None and decision.categories == ()
    assert decision.message == DENY_MESSAGES[reason]
    effects = (
        decision.concession_ride,
        decision.concession_entry,
        decision.spot_entry,
        decision.companion_used,
        decision.primary,
    )
    assert effects == (False,) * 5


# --- the worked examples of policy.md ------------------------------------------------


@dataclass(frozen=True)
class Example:
    venue: str
    when: str
    age: int
    expect: tuple[str, str, int] | Reason  # (rule, fare class, amount) or a deny reason
    holder: dict[str, Any] = field(default_factory=dict)


WORKED_EXAMPLES = {
    "K1 Wed 08:10 age 67 resident: peak, full": Example(
        "bus:K1", "2026-12-02 08:10", 67, ("bus.standard", "full", 200), {"resident": True}
    ),
    "K1 Sat 08:10 age 67: free": Example(
        "bus:K1", "2026-12-05 08:10", 67, ("bus.senior_65", "free", 0)
    ),
    "K1 Wed 10:00 age 67: free": Example(
        "bus:K1", "2026-12-02 10:00", 67, ("bus.senior_65", "free", 0)
    ),
    **{
        f"S101 {when} age 62: half 150": Example(
            "bus:S101", when, 62, ("bus.senior_60", "half", 150)
        )
        for when in ("2026-12-02 08:10", "2026-12-05 23:59", "2026-10-01 12:00", "2027-01-01 06:00")
    },
    "K1 Wed 08:10 age 67 veteran: free": Example(
        "bus:K1", "2026-12-02 08:10", 67, ("bus.veteran", "free", 0), {"categories": (VETERAN,)}
    ),
    **{
        f"K1 {when} age 72 5th ride: full": Example(
            "bus:K1", when, 72, ("bus.standard", "full", 200),
            {"usage": Usage(concession_rides_today=4)},
        )
        for when in ("2026-12-02 10:00", "2026-12-05 08:10", "2026-10-01 18:00")
    },
    **{
        f"K1 {when} disabled 2 companion: free": Example(
            "bus:K1", when, 40, ("bus.companion", "free", 0),
            {"categories": (DISABLED_2,), "companion": True, "usage": PRIMARY_OPEN},
        )
        for when in ("2026-12-02 08:10", "2026-12-05 14:00")
    },
    "K1 disabled 3 companion: denied": Example(
        "bus:K1", "2026-12-02 10:00", 40, Reason.COMPANION_NOT_ALLOWED,
        {"categories": (DISABLED_3,), "companion": True, "usage": PRIMARY_OPEN},
    ),
    "S01 holiday 10:00 age 30 resident: full 12000": Example(
        "spot:S01", "2026-10-01 10:00", 30, ("spot.standard", "full", 12000), {"resident": True}
    ),
    "S03 Wed 10:00 age 30 resident: free": Example(
        "spot:S03", "2026-12-02 10:00", 30, ("spot.resident", "free", 0), {"resident": True}
    ),
    "S03 second scan same day: already entered": Example(
        "spot:S03", "2026-12-02 10:05", 30, Reason.ALREADY_ENTERED_TODAY,
        {"resident": True, "usage": Usage(entered_today=True, spot_entries_today=1)},
    ),
    **{
        f"S03 18:00 {who}: closed": Example(
            "spot:S03", "2026-12-02 18:00", age, Reason.VENUE_CLOSED, holder
        )
        for who, age, holder in (
            ("adult", 30, {}),
            ("resident", 30, {"resident": True}),
            ("senior", 80, {}),
            ("veteran", 50, {"categories": (VETERAN,)}),
        )
    },
    **{
        f"S12 {when} age 61 non-resident: half 1500": Example(
            "spot:S12", when, 61, ("spot.senior_60", "half", 1500)
        )
        for when in ("2026-12-02 08:00", "2026-12-05 12:30", "2026-10-03 17:29:59")
    },
    **{
        f"S05 8000 entries, {who}: capacity": Example(
            "spot:S05", "2026-12-02 11:00", age, Reason.CAPACITY_REACHED,
            {**holder, "usage": Usage(spot_entries_today=8000)},
        )
        for who, age, holder in (
            ("adult", 30, {}),
            ("senior", 70, {}),
            ("resident", 30, {"resident": True}),
        )
    },
}


@pytest.mark.parametrize("example", WORKED_EXAMPLES.values(), ids=WORKED_EXAMPLES.keys())
def test_worked_example(engine: PolicyEngine, example: Example) -> None:
    decision = scan(engine, example.venue, example.when, example.age, **example.holder)
    if isinstance(example.expect, Reason):
        assert_deny(decision, example.expect)
    else:
        assert_accept(decision, *example.expect)


# --- bus: ages, peak windows, the calendar ----------------------------------------------


@pytest.mark.parametrize(
    ("age", "rule", "fare_class", "amount"),
    [
        (59, "bus.standard", "full", 200),
        (60, "bus.senior_60", "half", 100),
        (64, "bus.senior_60", "half", 100),
        (65, "bus.senior_65", "free", 0),
        (69, "bus.senior_65", "free", 0),
        (70, "bus.senior_70", "free", 0),
        (101, "bus.senior_70", "free", 0),
    ],
)
def test_bus_age_bands_off_peak(
    engine: PolicyEngine, age: int, rule: str, fare_class: str, amount: int
) -> None:
    assert_accept(scan(engine, "bus:K2", "2026-12-02 10:00", age), rule, fare_class, amount)


@pytest.mark.parametrize(
    ("when", "free"),
    [
        ("2026-12-02 06:59:59", True),
        ("2026-12-02 07:00:00", False),
        ("2026-12-02 08:59:59", False),
        ("2026-12-02 09:00:00", True),
        ("2026-12-02 16:59:59", True),
        ("2026-12-02 17:00:00", False),
        ("2026-12-02 18:59:59", False),
        ("2026-12-02 19:00:00", True),
        # working days by the calendar, not by the weekday
        ("2026-02-28 08:10", False),  # Saturday, makeup workday
        ("2026-01-04 17:30", False),  # Sunday, makeup workday
        ("2026-10-01 08:10", True),  # Thursday, National Day
        ("2026-02-16 17:30", True),  # Monday, Spring Festival
        ("2026-12-05 08:10", True),  # plain Saturday
        ("2027-05-03 08:10", True),  # Monday, provisional 2027 holiday
    ],
)
def test_senior_65_peak_windows(engine: PolicyEngine, when: str, free: bool) -> None:
    decision = scan(engine, "bus:K1", when, 67)
    if free:
        assert_accept(decision, "bus.senior_65", "free", 0)
    else:
        assert_accept(decision, "bus.standard", "full", 200)
        assert [o.rule for o in decision.offers] == ["bus.standard"]


def test_senior_70_and_60_have_no_peak_window(engine: PolicyEngine) -> None:
    assert_accept(scan(engine, "bus:K1", "2026-12-02 08:10", 70), "bus.senior_70", "free", 0)
    assert_accept(scan(engine, "bus:K1", "2026-12-02 17:10", 60), "bus.senior_60", "half", 100)


def test_scan_time_is_converted_to_city_time(engine: PolicyEngine) -> None:
    # 00:10 UTC is 08:10 in Demo City: a working-day peak.
    at = dt.datetime(2026, 12, 2, 0, 10, tzinfo=dt.UTC)
    decision = engine.evaluate(PolicyInput("bus:K1", at, dt.date(1959, 1, 1)))
    assert_accept(decision, "bus.standard", "full", 200)
    late = dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 local, next day
    assert engine.evaluate(PolicyInput("bus:K1", late, dt.date(1959, 1, 1))).local_date == (
        dt.date(2026, 12, 2)
    )


def test_naive_datetime_is_refused(engine: PolicyEngine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.evaluate(PolicyInput("bus:K1", dt.datetime(2026, 12, 2, 10), dt.date(1959, 1, 1)))


# --- the daily cap -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "rides", "rule", "counted"),
    [
        (72, 0, "bus.senior_70", True),
        (72, 3, "bus.senior_70", True),  # the 4th: still within the cap
        (72, 4, "bus.standard", False),  # the 5th: cap reached
        (67, 4, "bus.standard", False),
        (62, 3, "bus.senior_60", True),
        (62, 4, "bus.standard", False),
        (30, 0, "bus.standard", False),
    ],
)
def test_daily_cap_of_age_based_rides(
    engine: PolicyEngine, age: int, rides: int, rule: str, counted: bool
) -> None:
    usage = Usage(concession_rides_today=rides)
    decision = scan(engine, "bus:K3", "2026-12-05 10:00", age, usage=usage)
    assert decision.accepted and decision.rule == rule
    assert decision.concession_ride is counted
    assert decision.primary and not decision.spot_entry and not decision.concession_entry


@pytest.mark.parametrize("category", [VETERAN, DISABLED_3], ids=["veteran", "disabled"])
def test_veteran_and_disabled_rides_are_not_capped_nor_counted(
    engine: PolicyEngine, category: Category
) -> None:
    usage = Usage(concession_rides_today=50)
    decision = scan(engine, "bus:K1", "2026-12-02 08:10", 75, categories=(category,), usage=usage)
    assert_accept(decision, f"bus.{category.code}", "free", 0)
    assert not decision.concession_ride


def test_cap_does_not_apply_at_spots(engine: PolicyEngine) -> None:
    usage = Usage(concession_rides_today=9)
    decision = scan(engine, "spot:S02", "2026-12-02 10:00", 70, usage=usage)
    assert_accept(decision, "spot.senior_65", "free", 0)
    assert decision.concession_entry and decision.spot_entry and not decision.concession_ride


# --- categories and ages -------------------------------------------------------------------


def test_category_until_is_inclusive(engine: PolicyEngine) -> None:
    veteran = Category("veteran", until=dt.date(2026, 12, 2))
    on_last_day = scan(engine, "bus:K1", "2026-12-02 23:59:59", 30, categories=(veteran,))
    assert_accept(on_last_day, "bus.veteran", "free", 0)
    assert on_last_day.categories == ("veteran",)
    day_after = scan(engine, "bus:K1", "2026-12-03 00:00", 30, categories=(veteran,))
    assert_accept(day_after, "bus.standard", "full", 200)


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
        (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
        (dt.date(2008, 2, 29), dt.date(2028, 2, 28), 19),
        (dt.date(2008, 2, 29), dt.date(2028, 2, 29), 20),
        (dt.date(1961, 12, 2), dt.date(2026, 12, 1), 64),
        (dt.date(1961, 12, 2), dt.date(2026, 12, 2), 65),
        (dt.date(2026, 12, 2), dt.date(2026, 12, 2), 0),
    ],
)
def test_age_in_completed_years(
    engine: PolicyEngine, birth: dt.date, day: dt.date, age: int
) -> None:
    assert age_on(birth, day) == age
    assert engine.age_on(birth, day) == age


def test_29_february_birthday_on_the_bus(engine: PolicyEngine) -> None:
    born = dt.date(1956, 2, 29)
    # Sat 2026-02-28 is a makeup workday, and the holder is still 69: peak, no offer.
    before = engine.evaluate(PolicyInput("bus:K1", local("2026-02-28 08:10"), born))
    assert before.age == 69
    assert_accept(before, "bus.standard", "full", 200)
    # 1 March completes the year: 70, free at any hour.
    after = engine.evaluate(PolicyInput("bus:K1", local("2026-03-02 08:10"), born))
    assert after.age == 70
    assert_accept(after, "bus.senior_70", "free", 0)


# --- ties, offers, categories, messages ---------------------------------------------------


def test_first_listed_rule_wins_a_tie(engine: PolicyEngine) -> None:
    holder = {"categories": (DISABLED_1, VETERAN), "resident": True}
    bus = scan(engine, "bus:K1", "2026-12-05 10:00", 75, **holder)
    assert_accept(bus, "bus.veteran", "free", 0)
    assert [o.rule for o in bus.offers] == [
        "bus.veteran", "bus.disabled", "bus.senior_70", "bus.standard"
    ]
    spot = scan(engine, "spot:S04", "2026-12-02 10:00", 70, resident=True)
    assert_accept(spot, "spot.senior_65", "free", 0)
    assert spot.categories == ("senior",)
    assert [o.rule for o in spot.offers] == ["spot.senior_65", "spot.resident", "spot.standard"]


def test_cheapest_offer_wins_over_list_order(engine: PolicyEngine) -> None:
    # senior_60 (half) is listed before resident (free): the cheaper offer wins.
    decision = scan(engine, "spot:S12", "2026-12-02 10:00", 61, resident=True)
    assert_accept(decision, "spot.resident", "free", 0)
    assert decision.categories == ("resident",)
    offer_fares = {o.rule: (o.fare.fare_class, o.fare.amount_fen) for o in decision.offers}
    assert offer_fares == {
        "spot.senior_60": ("half", 1500),
        "spot.resident": ("free", 0),
        "spot.standard": ("full", 3000),
    }
    assert [o.age_based for o in decision.offers] == [True, False, False]


@pytest.mark.parametrize(
    ("venue", "age", "holder", "categories", "message"),
    [
        ("bus:K1", 72, {}, ("senior",), Message("老年人免费乘车", "Senior: free ride")),
        ("bus:K1", 30, {"categories": (VETERAN,)}, ("veteran",), None),
        ("bus:K1", 30, {"categories": (DISABLED_3,)}, ("disabled",), None),
        ("bus:K1", 30, {"resident": True}, (), None),
        ("spot:S02", 30, {"resident": True}, ("resident",), None),
        ("spot:S02", 30, {}, (), None),
    ],
)
def test_reported_categories_and_messages(
    engine: PolicyEngine,
    venue: str,
    age: int,
    holder: dict[str, Any],
    categories: tuple[str, ...],
    message: Message | None,
) -> None:
    decision = scan(engine, venue, "2026-12-02 10:00", age, **holder)
    assert decision.accepted
    assert decision.categories == categories
    assert decision.message.zh and decision.message.en
    if message is not None:
        assert decision.message == message


def test_unknown_venue(engine: PolicyEngine) -> None:
    for venue in ("bus:K9", "spot:S13", "spot:s01", "train:K1", "K1", ""):
        with pytest.raises(UnknownVenue):
            scan(engine, venue, "2026-12-02 10:00", 30)
    with pytest.raises(UnknownVenue):
        engine.standard_fare("bus:K4")
    with pytest.raises(UnknownVenue):
        engine.spot_capacity("S99")
    assert issubclass(UnknownVenue, ValueError)


def test_fares_are_whole_fen(engine: PolicyEngine) -> None:
    decision = scan(engine, "bus:S103", "2026-12-02 10:00", 60)
    assert decision.fare is not None
    assert (decision.fare.amount_fen, decision.fare.standard_fen) == (150, 300)
    assert decision.fare.fare_class is FareClass.HALF


# --- scenic spots ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue", "when", "open_"),
    [
        ("spot:S03", "2026-12-02 07:59:59", False),
        ("spot:S03", "2026-12-02 08:00:00", True),
        ("spot:S03", "2026-12-02 17:29:59", True),
        ("spot:S03", "2026-12-02 17:29:59.999999", True),
        ("spot:S03", "2026-12-02 17:30:00", False),
        ("spot:S03", "2026-12-02 00:00:00", False),
        ("spot:S01", "2026-12-02 07:29:59", False),
        ("spot:S01", "2026-12-02 07:30:00", True),
        ("spot:S01", "2026-12-02 17:59:59", True),
        ("spot:S01", "2026-12-02 18:00:00", False),
        ("spot:S12", "2026-12-02 08:00:00", True),
        ("spot:S12", "2026-12-02 17:30:00", False),
    ],
)
def test_spot_opening_hours(engine: PolicyEngine, venue: str, when: str, open_: bool) -> None:
    decision = scan(engine, venue, when, 30)
    if open_:
        assert decision.accepted and decision.rule == "spot.standard"
    else:
        assert_deny(decision, Reason.VENUE_CLOSED)


@pytest.mark.parametrize(
    ("venue", "entries", "full"),
    [
        ("spot:S05", 7999, False),
        ("spot:S05", 8000, True),
        ("spot:S05", 9000, True),
        ("spot:S01", 19999, False),
        ("spot:S01", 20000, True),
        ("spot:S12", 1999, False),
        ("spot:S12", 2000, True),
    ],
)
def test_spot_capacity(engine: PolicyEngine, venue: str, entries: int, full: bool) -> None:
    usage = Usage(spot_entries_today=entries)
    decision = scan(engine, venue, "2026-12-02 10:00", 30, usage=usage)
    if full:
        assert_deny(decision, Reason.CAPACITY_REACHED)
    else:
        assert decision.accepted and decision.spot_entry


def test_closed_is_reported_before_capacity(engine: PolicyEngine) -> None:
    usage = Usage(spot_entries_today=8000, entered_today=True)
    assert_deny(scan(engine, "spot:S05", "2026-12-02 07:00", 30, usage=usage), Reason.VENUE_CLOSED)
    at_capacity = scan(engine, "spot:S05", "2026-12-02 10:00", 70, usage=usage)
    assert_deny(at_capacity, Reason.CAPACITY_REACHED)


@pytest.mark.parametrize(
    ("when", "age", "holder", "expect"),
    [
        # a free or half entry already today, and again free or half now: denied
        ("2026-12-02 10:00", 30, {"resident": True}, Reason.ALREADY_ENTERED_TODAY),
        ("2026-12-02 10:00", 70, {}, Reason.ALREADY_ENTERED_TODAY),
        ("2026-12-02 10:00", 62, {}, Reason.ALREADY_ENTERED_TODAY),
        ("2026-12-02 10:00", 30, {"categories": (VETERAN,)}, Reason.ALREADY_ENTERED_TODAY),
        # the best offer now is full: a full-price entry is always allowed
        ("2026-12-02 10:00", 30, {}, ("spot.standard", "full", 6000)),
        ("2026-10-02 10:00", 30, {"resident": True}, ("spot.standard", "full", 6000)),
    ],
)
def test_already_entered_today(
    engine: PolicyEngine,
    when: str,
    age: int,
    holder: dict[str, Any],
    expect: tuple[str, str, int] | Reason,
) -> None:
    usage = Usage(entered_today=True, spot_entries_today=10)
    decision = scan(engine, "spot:S07", when, age, usage=usage, **holder)
    if isinstance(expect, Reason):
        assert_deny(decision, expect)
        assert decision.offers  # the dry run still explains what would have been offered
    else:
        assert_accept(decision, *expect)
        assert decision.spot_entry and not decision.concession_entry


@pytest.mark.parametrize(
    ("when", "rule", "amount"),
    [
        ("2026-12-02 10:00", "spot.resident", 0),  # working day
        ("2026-12-05 10:00", "spot.resident", 0),  # plain Saturday
        ("2026-02-28 10:00", "spot.resident", 0),  # makeup workday
        ("2026-10-07 10:00", "spot.standard", 6000),  # National Day
        ("2026-02-23 10:00", "spot.standard", 6000),  # last day of Spring Festival
        ("2026-02-24 10:00", "spot.resident", 0),
        ("2027-10-01 10:00", "spot.standard", 6000),  # provisional 2027 holiday
    ],
)
def test_resident_entry_is_not_free_on_holidays(
    engine: PolicyEngine, when: str, rule: str, amount: int
) -> None:
    decision = scan(engine, "spot:S02", when, 30, resident=True)
    assert_accept(decision, rule, "free" if amount == 0 else "full", amount)


def test_spot_entry_effects(engine: PolicyEngine) -> None:
    free = scan(engine, "spot:S06", "2026-12-02 10:00", 30, resident=True)
    assert (free.concession_entry, free.spot_entry, free.primary) == (True, True, True)
    assert not free.concession_ride and not free.companion_used
    full = scan(engine, "spot:S06", "2026-12-02 10:00", 30)
    assert (full.concession_entry, full.spot_entry, full.primary) == (False, True, True)


# --- companions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("categories", "usage", "allowed"),
    [
        ((DISABLED_1,), PRIMARY_OPEN, True),
        ((DISABLED_2,), PRIMARY_OPEN, True),
        ((DISABLED_3,), PRIMARY_OPEN, False),
        ((Category("disabled", 4),), PRIMARY_OPEN, False),
        ((VETERAN, DISABLED_3, DISABLED_2), PRIMARY_OPEN, True),
        ((VETERAN,), PRIMARY_OPEN, False),
        ((), PRIMARY_OPEN, False),
        ((DISABLED_1,), Usage(), False),  # no primary ride within the window
        ((Category("disabled", 1, until=dt.date(2026, 12, 1)),), PRIMARY_OPEN, False),
        ((Category("disabled", 2, until=dt.date(2026, 12, 2)),), PRIMARY_OPEN, True),
    ],
)
def test_bus_companion(
    engine: PolicyEngine, categories: tuple[Category, ...], usage: Usage, allowed: bool
) -> None:
    holder: dict[str, Any] = {"categories": categories, "companion": True, "usage": usage}
    decision = scan(engine, "bus:K5", "2026-12-02 08:10", 40, **holder)
    if not allowed:
        assert_deny(decision, Reason.COMPANION_NOT_ALLOWED)
        assert decision.offers == ()
        return
    assert_accept(decision, "bus.companion", "free", 0)
    assert decision.categories == ("disabled",)
    assert decision.companion_used and not decision.primary
    assert not decision.concession_ride and not decision.spot_entry
    assert [o.rule for o in decision.offers] == ["bus.companion"]


def test_companion_of_a_capped_senior_is_still_free(engine: PolicyEngine) -> None:
    usage = Usage(concession_rides_today=4, companion_primary=True)
    holder: dict[str, Any] = {"categories": (DISABLED_1,), "companion": True, "usage": usage}
    decision = scan(engine, "bus:K1", "2026-12-02 10:00", 80, **holder)
    assert_accept(decision, "bus.companion", "free", 0)
    assert not decision.concession_ride


def test_spot_companion(engine: PolicyEngine) -> None:
    holder: dict[str, Any] = {"categories": (DISABLED_2,), "companion": True}
    usage = Usage(companion_primary=True, entered_today=True, spot_entries_today=5)
    # step 3 (already entered) does not apply to companions
    decision = scan(engine, "spot:S08", "2026-12-02 10:00", 40, usage=usage, **holder)
    assert_accept(decision, "spot.companion", "free", 0)
    assert decision.spot_entry and decision.companion_used
    assert not decision.concession_entry and not decision.primary
    # steps 1 and 2 do
    closed = scan(engine, "spot:S08", "2026-12-02 17:30", 40, usage=usage, **holder)
    assert_deny(closed, Reason.VENUE_CLOSED)
    full_usage = Usage(companion_primary=True, spot_entries_today=8000)
    full = scan(engine, "spot:S08", "2026-12-02 10:00", 40, usage=full_usage, **holder)
    assert_deny(full, Reason.CAPACITY_REACHED)
    holder["categories"] = (DISABLED_3,)
    grade_3 = scan(engine, "spot:S08", "2026-12-02 10:00", 40, usage=usage, **holder)
    assert_deny(grade_3, Reason.COMPANION_NOT_ALLOWED)


# --- what the pipeline reads from the engine -------------------------------------------------


def test_engine_configuration_accessors(engine: PolicyEngine) -> None:
    assert engine.version == "v1"
    assert engine.daily_concession_cap == 4
    assert engine.companion_window_s == 120
    assert [engine.spot_capacity(s) for s in ("S01", "S05", "S12")] == [20000, 8000, 2000]
    assert engine.standard_fare("bus:K1") == 200
    assert engine.standard_fare("bus:S101") == 300
    assert engine.standard_fare("spot:S01") == 12000
    assert engine.standard_fare("spot:S02") == 6000
    assert engine.standard_fare("spot:S12") == 3000
    assert engine.operator_of("bus:K8") == "OP-BUS-CITY"
    assert engine.operator_of("bus:S102") == "OP-BUS-SUBURB"
    assert engine.operator_of("spot:S09") == "OP-SPOT-S09"
    assert len(engine.venues) == 8 + 12
    assert engine.venue_info("spot:S01").opens == dt.time(7, 30)


@pytest.mark.parametrize(
    ("region", "resident"),
    [("369900", True), ("369912", True), ("369800", False), ("110105", False), ("", False)],
)
def test_residents_by_region_prefix(engine: PolicyEngine, region: str, resident: bool) -> None:
    assert engine.is_resident(region) is resident


def test_local_date_and_time(engine: PolicyEngine) -> None:
    # 2026-12-01T16:00:00Z is midnight of 2 December in Demo City.
    midnight = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
    assert engine.local_date(midnight.timestamp()) == dt.date(2026, 12, 2)
    assert engine.local_date(midnight.timestamp() - 1) == dt.date(2026, 12, 1)
    converted = engine.local_datetime(midnight)
    assert (converted.date(), converted.time()) == (dt.date(2026, 12, 2), dt.time(0, 0))
    assert converted.utcoffset() == dt.timedelta(hours=8)
    # The pipeline's one conversion per validation gives the same local time, and an
    # already-local datetime is taken as it is.
    from_unix = engine.local_from_unix(midnight.timestamp())
    assert from_unix == converted and from_unix.utcoffset() == dt.timedelta(hours=8)
    assert engine.local_datetime(from_unix) is from_unix
    assert engine.evaluate(PolicyInput("bus:K1", from_unix, dt.date(1959, 1, 1))) == (
        engine.evaluate(PolicyInput("bus:K1", midnight, dt.date(1959, 1, 1))))
