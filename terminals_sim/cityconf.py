"""The simulator's reading of the configuration folder (`config/`), with `tomllib` alone.

The simulator must not import the validator, so it reads the four TOML files itself and
keeps only what a terminal operator or a test author would know from the documents:
venues, prices, capacities, opening hours, the holiday calendar, the terminal registry
and the two numeric knobs of policy v1 (companion window, daily concession cap).

The entitlement *rules* are not read from policy.toml: the simulator's expectations are
those of `docs/policy.md` v1 (see `oracle.py`), so a policy.toml of another version is
refused rather than silently mis-predicted.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Calendar", "CityConfig", "ConfigProblem", "Spot", "TerminalSpec", "load_city_config"]

POLICY_VERSION = "v1"


class ConfigProblem(ValueError):
    """A configuration file the simulator cannot use; the message names the file."""


@dataclass(frozen=True)
class Spot:
    id: str
    operator: str
    ticket_fen: int
    capacity_per_day: int
    opens: dt.time
    closes: dt.time

    def is_open(self, local: dt.datetime) -> bool:
        """Entry from `opens` up to but not including `closes` (policy.md)."""
        return self.opens <= local.time() < self.closes


@dataclass(frozen=True)
class TerminalSpec:
    id: str
    kind: str  # "gate" | "bus"
    venue: str  # "spot:<id>" | "bus:<route>"
    operator: str
    enabled: bool

    @property
    def venue_id(self) -> str:
        return self.venue.split(":", 1)[1]


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[dt.date]
    makeup_workdays: frozenset[dt.date]

    def is_holiday(self, day: dt.date) -> bool:
        return day in self.holidays

    def is_working_day(self, day: dt.date) -> bool:
        """Mon–Fri not a holiday, or any makeup workday (policy.md, "Calendar")."""
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True)
class CityConfig:
    tz: dt.tzinfo
    region: str
    resident_prefixes: tuple[str, ...]
    routes: dict[str, int]  # route id -> standard fare (fen)
    spots: dict[str, Spot]
    calendar: Calendar
    terminals: tuple[TerminalSpec, ...]
    companion_window_s: int = 120
    daily_concession_cap: int = 4
    operators: dict[str, str] = field(default_factory=dict)  # venue -> operator

    def local(self, unix_s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(unix_s, self.tz)

    def is_resident_region(self, region: str) -> bool:
        return region.startswith(self.resident_prefixes)

    def terminal(self, terminal_id: str) -> TerminalSpec:
        for spec in self.terminals:
            if spec.id == terminal_id:
                return spec
        raise KeyError(terminal_id)


def _read(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigProblem(f"{path}: {exc}") from exc


def _hhmm(value: object, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigProblem(f"city.toml: {where}: expected 'HH:MM', got {value!r}") from exc


def _timezone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        if name == "Asia/Shanghai":  # no tzdata installed: China has kept UTC+8, no DST
            return dt.timezone(dt.timedelta(hours=8), name)
        raise ConfigProblem(f"city.toml: time_zone {name!r} unknown (install tzdata)") from None


def _spots(city: dict[str, Any]) -> dict[str, Spot]:
    defaults = city.get("spot_defaults", {})
    spots = {}
    for raw in city.get("spot", []):
        merged = {**defaults, **raw}
        where = f"spot {merged.get('id')}"
        spots[merged["id"]] = Spot(
            id=merged["id"], operator=merged["operator"], ticket_fen=int(merged["ticket_fen"]),
            capacity_per_day=int(merged["capacity_per_day"]),
            opens=_hhmm(merged["opens"], where + ".opens"),
            closes=_hhmm(merged["closes"], where + ".closes"))
    return spots


def _calendar(doc: dict[str, Any]) -> Calendar:
    holidays: set[dt.date] = set()
    makeup: set[dt.date] = set()
    for year in doc.get("year", []):
        for span in year.get("holidays", []):
            day: dt.date = span["from"]
            while day <= span["to"]:
                holidays.add(day)
                day += dt.timedelta(days=1)
        makeup.update(year.get("makeup_workdays", []))
    return Calendar(frozenset(holidays), frozenset(makeup))


def load_city_config(folder: Path) -> CityConfig:
    """Read city.toml, calendar.toml, terminals.toml and policy.toml from `folder`."""
    city, policy = _read(folder, "city.toml"), _read(folder, "policy.toml")
    if policy.get("version") != POLICY_VERSION:
        raise ConfigProblem(f"{folder / 'policy.toml'}: the simulator predicts policy "
                            f"{POLICY_VERSION}, got version {policy.get('version')!r}")
    try:
        routes = {r["id"]: int(r["standard_fen"]) for r in city.get("route", [])}
        spots = _spots(city)
        terminals = tuple(
            TerminalSpec(t["id"], t["kind"], t["venue"], t["operator"],
                         bool(t.get("enabled", True)))
            for t in _read(folder, "terminals.toml").get("terminal", []))
        operators = {f"bus:{r['id']}": r["operator"] for r in city.get("route", [])}
        operators.update({f"spot:{s.id}": s.operator for s in spots.values()})
        return CityConfig(
            tz=_timezone(city.get("time_zone", "Asia/Shanghai")),
            region=str(city["region"]),
            resident_prefixes=tuple(city.get("resident_region_prefixes", [])),
            routes=routes, spots=spots, calendar=_calendar(_read(folder, "calendar.toml")),
            terminals=terminals,
            companion_window_s=int(policy.get("companion_window_s", 120)),
            daily_concession_cap=int(policy.get("bus", {}).get("daily_concession_cap", 4)),
            operators=operators)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigProblem):
            raise
        raise ConfigProblem(f"{folder}: missing or bad value: {exc!r}") from exc
