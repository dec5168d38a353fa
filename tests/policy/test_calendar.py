"""Holidays and working days: the default 2026/2027 calendar of docs/policy.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from validator.config_folder import load_config
from validator.policy.calendar import Calendar

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

HOLIDAYS_2026 = [  # policy.md, inclusive ranges
    ("2026-01-01", "2026-01-03"),
    ("2026-02-15", "2026-02-23"),
    ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"),
    ("2026-06-19", "2026-06-21"),
    ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
]
MAKEUP_WORKDAYS_2026 = [
    "2026-01-04",
    "2026-02-14",
    "2026-02-28",
    "2026-05-09",
    "2026-09-20",
    "2026-10-10",
]


def days(first: str, last: str) -> list[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [start + dt.timedelta(n) for n in range((end - start).days + 1)]


@pytest.fixture(scope="module")
def calendar() -> Calendar:
    return load_config(CONFIG_DIR).calendar


def test_2026_holidays_are_exactly_those_of_policy_md(calendar: Calendar) -> None:
    expected = {d for first, last in HOLIDAYS_2026 for d in days(first, last)}
    assert {d for d in calendar.holidays if d.year == 2026} == expected
    assert len(expected) == 33


def test_2026_makeup_workdays_are_exactly_those_of_policy_md(calendar: Calendar) -> None:
    expected = {dt.date.fromisoformat(d) for d in MAKEUP_WORKDAYS_2026}
    assert {d for d in calendar.makeup_workdays if d.year == 2026} == expected


@pytest.mark.parametrize(
    ("day", "holiday", "working"),
    [
        ("2026-01-01", True, False),  # Thursday, New Year
        ("2026-01-04", False, True),  # Sunday, makeup workday
        ("2026-02-14", False, True),  # Saturday, makeup workday
        ("2026-02-15", True, False),  # Sunday, first day of Spring Festival
        ("2026-02-23", True, False),  # Monday, last day of Spring Festival
        ("2026-02-24", False, True),  # Tuesday
        ("2026-02-28", False, True),  # Saturday, makeup workday
        ("2026-03-01", False, False),  # Sunday
        ("2026-10-01", True, False),
        ("2026-10-07", True, False),
        ("2026-10-08", False, True),
        ("2026-10-10", False, True),  # Saturday, makeup workday
        ("2026-12-02", False, True),  # Wednesday
        ("2026-12-05", False, False),  # Saturday
        ("2027-01-01", True, False),  # provisional 2027
        ("2027-05-03", True, False),
        ("2027-10-07", True, False),
        ("2027-10-08", False, True),
        ("2028-01-03", False, True),  # no calendar for 2028: weekdays only
        ("2028-01-01", False, False),
    ],
)
def test_holidays_and_working_days(
    calendar: Calendar, day: str, holiday: bool, working: bool
) -> None:
    date = dt.date.fromisoformat(day)
    assert calendar.is_holiday(date) is holiday
    assert calendar.is_working_day(date) is working


def test_2027_is_provisional_and_2028_unknown(calendar: Calendar) -> None:
    assert not calendar.is_provisional(dt.date(2026, 6, 1))
    assert calendar.is_provisional(dt.date(2027, 6, 1))
    assert calendar.covers(dt.date(2027, 12, 31))
    assert not calendar.covers(dt.date(2028, 1, 1))
    assert not calendar.is_provisional(dt.date(2028, 1, 1))


def test_calendar_from_plain_dates() -> None:
    calendar = Calendar(holidays=[dt.date(2030, 1, 1)], makeup_workdays=[dt.date(2030, 1, 5)])
    assert calendar.is_holiday(dt.date(2030, 1, 1))
    assert not calendar.is_working_day(dt.date(2030, 1, 1))  # a Tuesday, but a holiday
    assert calendar.is_working_day(dt.date(2030, 1, 5))  # a Saturday, but a makeup day
    assert not calendar.is_working_day(dt.date(2030, 1, 6))
    assert not calendar.covers(dt.date(2030, 1, 1))
