"""The oracle against the worked examples of policy.md (and a few protocol rules)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from terminals_sim.cityconf import CityConfig, TerminalSpec
from terminals_sim.expect import Expected, describe_mismatch
from terminals_sim.keyset import SimKeys
from terminals_sim.oracle import Oracle
from terminals_sim.population import Category, Holder, Population

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def term(city: CityConfig, terminal_id: str) -> TerminalSpec:
    return city.terminal(terminal_id)


def holder(keys: SimKeys, city: CityConfig, when: str, **kwargs: object) -> Holder:
    day = dt.date.fromisoformat(when[:10])
    return Population(keys, city, seed=1, today=day, now=int(at(when))).make(**kwargs)  # type: ignore[arg-type]


def accepted(answers: list[Expected]) -> tuple[str | None, str | None, int | None]:
    first = answers[0]
    return first.rule, first.fare_class, first.amount_fen


@pytest.mark.parametrize(("terminal_id", "when", "age", "extra", "rule", "fare", "amount"), [
    ("T-BUS-K1-001", "2026-12-02T08:10", 67, {}, "bus.standard", "full", 200),
    ("T-BUS-K1-001", "2026-12-05T08:10", 67, {}, "bus.senior_65", "free", 0),
    ("T-BUS-K1-001", "2026-12-02T10:00", 67, {}, "bus.senior_65", "free", 0),
    ("T-BUS-S101-001", "2026-12-02T08:10", 62, {}, "bus.senior_60", "half", 150),
    ("T-BUS-K1-001", "2026-12-02T08:10", 67,
     {"categories": (Category("veteran"),)}, "bus.veteran", "free", 0),
    ("T-GATE-S01-01", "2026-10-01T10:00", 30, {}, "spot.standard", "full", 12000),
    ("T-GATE-S03-01", "2026-12-02T10:00", 30, {}, "spot.resident", "free", 0),
    ("T-GATE-S12-01", "2026-12-02T11:00", 61, {"resident": False, "carriers": "ecard"},
     "spot.senior_60", "half", 1500),
    # a makeup workday (Saturday 2026-02-28) has peak hours; a holiday weekday has none
    ("T-BUS-K1-001", "2026-02-28T17:30", 67, {}, "bus.standard", "full", 200),
    ("T-BUS-K1-001", "2026-10-02T08:00", 67, {}, "bus.senior_65", "free", 0),
])
def test_worked_examples(keys: SimKeys, city: CityConfig, terminal_id: str, when: str,
                         age: int, extra: dict[str, object], rule: str, fare: str,
                         amount: int) -> None:
    oracle = Oracle(city, registry_loaded=True)
    h = holder(keys, city, when, age=age, **extra)
    answers = oracle.expect(h, term(city, terminal_id), at(when))
    assert accepted(answers) == (rule, fare, amount)


def test_daily_cap_fifth_ride_is_full(keys: SimKeys, city: CityConfig) -> None:
    oracle, bus = Oracle(city, registry_loaded=True), term(city, "T-BUS-K1-001")
    h = holder(keys, city, "2026-12-02T10:00", age=72)
    for ride in range(5):
        when = at("2026-12-02T10:00") + ride * 60
        answers = oracle.expect(h, bus, when)
        best = answers[0]
        oracle.observe(h, bus, when, companion=False, status=200, body={
            "decision": "accept", "rule": best.rule, "fare": {"class": best.fare_class}})
    assert accepted(answers) == ("bus.standard", "full", 200)


def test_companion(keys: SimKeys, city: CityConfig) -> None:
    oracle, bus = Oracle(city, registry_loaded=True), term(city, "T-BUS-K1-001")
    t0 = at("2026-12-02T10:00")
    grade2 = holder(keys, city, "2026-12-02T10:00", age=40,
                    categories=(Category("disabled", grade=2),))
    grade3 = holder(keys, city, "2026-12-02T10:00", age=40,
                    categories=(Category("disabled", grade=3),))
    for h in (grade2, grade3):
        oracle.observe(h, bus, t0, companion=False, status=200, body={
            "decision": "accept", "rule": "bus.disabled", "fare": {"class": "free"}})
    assert accepted(oracle.expect(grade2, bus, t0 + 30, companion=True)) == (
        "bus.companion", "free", 0)
    assert oracle.expect(grade3, bus, t0 + 30, companion=True) == [
        Expected.deny("companion_not_allowed")]
    assert oracle.expect(grade2, bus, t0 + 121, companion=True) == [
        Expected.deny("companion_not_allowed")]
    other_bus = term(city, "T-BUS-K1-002")
    assert oracle.expect(grade2, other_bus, t0 + 30, companion=True) == [
        Expected.deny("companion_not_allowed")]


def test_spot_second_entry_hours_and_capacity(keys: SimKeys, city: CityConfig) -> None:
    oracle, gate = Oracle(city, registry_loaded=True), term(city, "T-GATE-S03-01")
    h = holder(keys, city, "2026-12-02T10:00", age=30)
    t0 = at("2026-12-02T10:00")
    oracle.observe(h, gate, t0, companion=False, status=200,
                   body={"decision": "accept", "rule": "spot.resident", "fare": {"class": "free"}})
    assert oracle.expect(h, gate, t0 + 60)[0] == Expected.deny("already_entered_today")
    assert oracle.expect(h, gate, at("2026-12-02T18:00")) == [Expected.deny("venue_closed")]
    # capacity: unknown baseline admits `capacity_reached` as an alternative; a known one decides
    s05 = term(city, "T-GATE-S05-01")
    assert Expected.deny("capacity_reached") in oracle.expect(h, s05, t0)
    oracle.set_baseline("S05", dt.date(2026, 12, 2), 8000)
    assert oracle.expect(h, s05, t0) == [Expected.deny("capacity_reached")]


def test_lapsed_category_and_unloaded_registry(keys: SimKeys, city: CityConfig) -> None:
    bus, when = term(city, "T-BUS-K1-001"), "2026-12-02T10:00"
    lapsed = holder(keys, city, when, age=40, categories=(
        Category("disabled", grade=1, until=dt.date(2026, 12, 1)),))
    assert accepted(Oracle(city, registry_loaded=True).expect(lapsed, bus, at(when))) == (
        "bus.standard", "full", 200)
    veteran = holder(keys, city, when, age=40, categories=(Category("veteran"),))
    assert accepted(Oracle(city, registry_loaded=False).expect(veteran, bus, at(when))) == (
        "bus.standard", "full", 200)


def test_mismatch_is_described() -> None:
    want = Expected.accept("bus.senior_60", "half", 150, 300, ("senior",))
    body = {"decision": "accept", "reason": "ok", "rule": "bus.senior_60",
            "categories": ["senior"], "fare": {"class": "half", "amount_fen": 150,
                                               "standard_fen": 300}}
    assert describe_mismatch([want], 200, body) is None
    wrong = {**body, "fare": {"class": "half", "amount_fen": 100, "standard_fen": 300}}
    assert "fare.amount_fen 100 != 150" in str(describe_mismatch([want], 200, wrong))
    assert describe_mismatch([Expected.http(400, "invalid_request")], 200, body) == \
        "status 200 != 400"
    # any alternative may match
    assert describe_mismatch([Expected.deny("replayed"), want], 200, body) is None
