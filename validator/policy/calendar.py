"""Public holidays and working days of the city (docs/policy.md, "Calendar").

A *working day* is Mon–Fri not in `holidays`, or any date in `makeup_workdays` (调休上班日).
The dates come from `config/calendar.toml`; a date outside every configured year falls
back to the plain weekday rule, and `covers` tells whether the calendar knows the year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from validator.policy.model import CalendarConfig


class Calendar:
    """Lookups over frozen sets of dates: cheap enough for every validation."""

    __slots__ = ("_holidays", "_makeup_workdays", "_provisional_years", "_years")

    def __init__(
        self,
        holidays: Iterable[dt.date] = (),
        makeup_workdays: Iterable[dt.date] = (),
        *,
        years: Iterable[int] = (),
        provisional_years: Iterable[int] = (),
    ) -> None:
        self._holidays = frozenset(holidays)
        self._makeup_workdays = frozenset(makeup_workdays)
        self._years = frozenset(years)
        self._provisional_years = frozenset(provisional_years)

    @classmethod
    def from_config(cls, config: CalendarConfig) -> Calendar:
        return cls(
            holidays=(d for year in config.years for block in year.holidays for d in block.days()),
            makeup_workdays=(d for year in config.years for d in year.makeup_workdays),
            years=(year.year for year in config.years),
            provisional_years=(year.year for year in config.years if year.provisional),
        )

    @property
    def holidays(self) -> frozenset[dt.date]:
        return self._holidays

    @property
    def makeup_workdays(self) -> frozenset[dt.date]:
        return self._makeup_workdays

    def is_holiday(self, day: dt.date) -> bool:
        """A day off of a public holiday, bridge days included (法定节假日及调休放假日)."""
        return day in self._holidays

    def is_working_day(self, day: dt.date) -> bool:
        if day in self._makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self._holidays

    def covers(self, day: dt.date) -> bool:
        """Whether the calendar has an entry for `day`'s year (else only weekdays count)."""
        return day.year in self._years

    def is_provisional(self, day: dt.date) -> bool:
        """Whether `day`'s year was entered before the official schedule."""
        return day.year in self._provisional_years
