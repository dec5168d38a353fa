"""Configuration schema: the city, its calendar, the entitlement policy and the terminal
registry (docs/policy.md, protocol §6), as frozen pydantic models.

Everything an operator may change lives in `config/*.toml` and is checked here, once,
at load, so that the engine can trust it: ids have the right shape, times are `HH:MM`,
dates are real, and references between parts point at something that exists. A check
that looks across fields raises `InvalidField`, which carries the path of the field at
fault so that `validator.config_folder` can name it. Field names follow the files: an array of
tables `[[operator]]` is the attribute `operators`, read under the alias `operator`.
The policy's own models live in `validator.policy.rules` and are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, StringConstraints, field_validator, model_validator

from validator.policy.fields import (
    ClockTime,
    Day,
    Fen,
    FieldPath,
    Flag,
    FrozenModel,
    Id,
    InvalidField,
    Name,
    VenueCode,
)
from validator.policy.rules import CompanionRule, NoOfferWindow, Policy, Rule, Text

__all__ = [
    "CalendarConfig",
    "CalendarYear",
    "City",
    "CompanionRule",
    "HolidayRange",
    "InvalidField",
    "NoOfferWindow",
    "Operator",
    "Policy",
    "Route",
    "Rule",
    "Spot",
    "SpotDefaults",
    "Terminal",
    "TerminalRegistry",
    "Text",
]


# --- the city ---------------------------------------------------------------------


class Operator(FrozenModel):
    """Who runs a route or a spot, and is paid for it in settlement."""

    id: Id
    name: Name  # display name, Chinese
    name_en: Name | None = None


class Route(FrozenModel):
    """A bus route: `venue = "bus:<id>"`, with its standard fare."""

    id: VenueCode
    operator: Id
    standard_fen: Fen


class SpotDefaults(FrozenModel):
    """Values a `[[spot]]` takes unless it sets its own (`[spot_defaults]`)."""

    ticket_fen: Fen
    capacity_per_day: Annotated[int, Strict(), Field(ge=1, le=10_000_000)]
    opens: ClockTime
    closes: ClockTime


class Spot(SpotDefaults):
    """A scenic spot; entry from `opens` (inclusive) to `closes` (exclusive), local."""

    id: VenueCode
    name: Name
    name_en: Name | None = None
    operator: Id


class City(FrozenModel):
    """`config/city.toml`: the city, its operators, routes and scenic spots."""

    name: Name
    name_zh: Name | None = None
    time_zone: str
    region: Annotated[str, StringConstraints(strict=True, pattern=r"^\d{6}$")]
    resident_region_prefixes: tuple[
        Annotated[str, StringConstraints(strict=True, pattern=r"^\d{1,6}$")], ...
    ] = Field(min_length=1)
    operators: tuple[Operator, ...] = Field(alias="operator", min_length=1)
    routes: tuple[Route, ...] = Field(default=(), alias="route")
    spot_defaults: SpotDefaults | None = None
    spots: tuple[Spot, ...] = Field(default=(), alias="spot")

    @model_validator(mode="before")
    @classmethod
    def _apply_spot_defaults(cls, data: Any) -> Any:
        # Only the keys a default may carry are copied, so that a typo in
        # [spot_defaults] is reported there once, not again under every spot.
        if not isinstance(data, dict):
            return data
        defaults, spots = data.get("spot_defaults"), data.get("spot")
        if not isinstance(defaults, dict) or not isinstance(spots, list):
            return data
        known = {k: v for k, v in defaults.items() if k in SpotDefaults.model_fields}
        merged = [{**known, **s} if isinstance(s, dict) else s for s in spots]
        return {**data, "spot": merged}

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (e.g. 'Asia/Shanghai')") from None
        return value

    @model_validator(mode="after")
    def _check_references(self) -> City:
        _unique("operator", [o.id for o in self.operators])
        _unique("route", [r.id for r in self.routes])
        _unique("spot", [s.id for s in self.spots])
        if self.spot_defaults is not None:
            _check_opening(("spot_defaults",), self.spot_defaults)
        known = {o.id for o in self.operators}
        references = [("route", i, r.operator) for i, r in enumerate(self.routes)]
        references += [("spot", i, s.operator) for i, s in enumerate(self.spots)]
        for table, i, operator in references:
            if operator not in known:
                raise InvalidField((table, i, "operator"), operator, "not an [[operator]] id")
        for i, spot in enumerate(self.spots):
            _check_opening(("spot", i), spot)
        return self

    def venue_operators(self) -> dict[str, str]:
        """Every venue (`bus:<route>`, `spot:<id>`) and its operator."""
        found = {f"bus:{r.id}": r.operator for r in self.routes}
        found.update({f"spot:{s.id}": s.operator for s in self.spots})
        return found


def _check_opening(path: FieldPath, hours: SpotDefaults) -> None:
    if hours.opens >= hours.closes:
        raise InvalidField((*path, "closes"), hours.closes, "must be later than `opens`")


def _unique(table: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise InvalidField((table, i, "id"), ident, "duplicate id")
        seen.add(ident)


# --- the calendar -----------------------------------------------------------------


class HolidayRange(FrozenModel):
    """Consecutive days off, `from` and `to` inclusive."""

    start: Day = Field(alias="from")
    end: Day = Field(alias="to")  # inclusive
    name: Name | None = None

    @model_validator(mode="after")
    def _ordered(self) -> HolidayRange:
        if self.end < self.start:
            raise InvalidField(("to",), self.end, "must not be before `from`")
        if (self.end - self.start).days > 31:
            raise InvalidField(("to",), self.end, "a holiday block longer than a month")
        return self

    def days(self) -> list[dt.date]:
        count = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=n) for n in range(count)]


class CalendarYear(FrozenModel):
    """One year of the State Council's holiday schedule."""

    year: Annotated[int, Strict(), Field(ge=2000, le=2100)]
    provisional: Flag = False  # entered before the official schedule was published
    holidays: tuple[HolidayRange, ...] = ()
    makeup_workdays: tuple[Day, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> CalendarYear:
        for i, block in enumerate(self.holidays):
            # A block may straddle New Year (元旦 has begun on 30 December).
            if not block.start.year <= self.year <= block.end.year:
                raise InvalidField(("holidays", i), block.start, f"not in {self.year}")
        holidays = {d for block in self.holidays for d in block.days()}
        for i, day in enumerate(self.makeup_workdays):
            if day.weekday() < 5:
                raise InvalidField(("makeup_workdays", i), day, "not a weekend date")
            if day in holidays:
                raise InvalidField(("makeup_workdays", i), day, "is also a holiday")
            if day.year not in (self.year - 1, self.year):
                raise InvalidField(("makeup_workdays", i), day, f"not in {self.year}")
        return self


class CalendarConfig(FrozenModel):
    """`config/calendar.toml`: one `[[year]]` per published schedule."""

    years: tuple[CalendarYear, ...] = Field(default=(), alias="year")

    @model_validator(mode="after")
    def _unique_years(self) -> CalendarConfig:
        seen: set[int] = set()
        for i, year in enumerate(self.years):
            if year.year in seen:
                raise InvalidField(("year", i, "year"), year.year, "duplicate year")
            seen.add(year.year)
        return self


# --- the terminal registry ----------------------------------------------------------


class Terminal(FrozenModel):
    """A registered terminal (protocol §6): a gate at a spot, or a reader on a bus."""

    id: Id
    kind: Literal["gate", "bus"]
    venue: Annotated[
        str, StringConstraints(strict=True, pattern=r"^(spot|bus):[A-Z0-9-]{1,40}$")
    ]
    operator: Id
    enabled: Flag = True

    @model_validator(mode="after")
    def _kind_fits_venue(self) -> Terminal:
        expected = "spot" if self.kind == "gate" else "bus"
        if self.venue.split(":", 1)[0] != expected:
            raise InvalidField(
                ("venue",), self.venue, f"a {self.kind} terminal needs a `{expected}:` venue"
            )
        return self


class TerminalRegistry(FrozenModel):
    """`config/terminals.toml`: every `[[terminal]]`, ids unique."""

    terminals: tuple[Terminal, ...] = Field(default=(), alias="terminal")

    @model_validator(mode="after")
    def _unique_ids(self) -> TerminalRegistry:
        _unique("terminal", [t.id for t in self.terminals])
        return self

    def check_against(self, city: City) -> None:
        """Every terminal's venue exists in `city` and is run by the terminal's operator."""
        operators = city.venue_operators()
        for i, terminal in enumerate(self.terminals):
            if terminal.venue not in operators:
                raise InvalidField(
                    ("terminal", i, "venue"), terminal.venue, "no such route or spot in the city"
                )
            if terminal.operator != operators[terminal.venue]:
                raise InvalidField(
                    ("terminal", i, "operator"),
                    terminal.operator,
                    f"the venue's operator is {operators[terminal.venue]}",
                )
