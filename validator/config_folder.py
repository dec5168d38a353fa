"""Loading the configuration folder (`config/`): city, calendar, policy, terminals.

`load_config` reads the four TOML files, validates them with the models of
`validator.policy.model`, checks the terminal registry against the city and builds the
policy engine. Every failure — an unreadable file, a TOML syntax error, a schema or a
cross-reference violation — is translated here, once, into `ConfigError`, whose message
names the file, the field path and the bad value:

    city.toml: spot[2](S03).opens: expected a local time as the string 'HH:MM' … (got '25:00')
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pydantic

from validator.policy.calendar import Calendar
from validator.policy.engine import PolicyEngine
from validator.policy.model import (
    CalendarConfig,
    City,
    InvalidField,
    Policy,
    Terminal,
    TerminalRegistry,
)

CITY_FILE = "city.toml"
CALENDAR_FILE = "calendar.toml"
POLICY_FILE = "policy.toml"
TERMINALS_FILE = "terminals.toml"
FILES = (CITY_FILE, CALENDAR_FILE, POLICY_FILE, TERMINALS_FILE)

_M = TypeVar("_M", bound=pydantic.BaseModel)


class Problem(NamedTuple):
    """One thing wrong in a configuration file."""

    path: str  # e.g. "spot[2](S03).opens"; "" for the file as a whole
    detail: str
    value: str | None = None  # the bad value, shown; None when there is none to show


class ConfigError(Exception):
    """The configuration cannot be used. `file` and `problems` say where and why."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{file}: {_describe(p)}" for p in problems))


@dataclass(frozen=True)
class Config:
    """A validated configuration folder and the policy engine built from it."""

    city: City
    calendar: Calendar
    policy: Policy
    terminals: dict[str, Terminal]  # by terminal id
    engine: PolicyEngine


def load_config(config_dir: Path) -> Config:
    """Read and check `config_dir`. Raises `ConfigError`."""
    _check_folder(config_dir)
    city = _load(config_dir, CITY_FILE, City.model_validate)
    calendar = Calendar.from_config(_load(config_dir, CALENDAR_FILE, CalendarConfig.model_validate))
    policy = _load(config_dir, POLICY_FILE, Policy.model_validate)
    raw_terminals = _read_toml(config_dir / TERMINALS_FILE)
    registry = _validate(TERMINALS_FILE, raw_terminals, TerminalRegistry.model_validate)
    try:
        registry.check_against(city)
    except InvalidField as exc:
        problem = Problem(_format_path(exc.path, raw_terminals), exc.message, _show(exc.value))
        raise ConfigError(TERMINALS_FILE, [problem]) from None
    return Config(
        city=city,
        calendar=calendar,
        policy=policy,
        terminals={t.id: t for t in registry.terminals},
        engine=PolicyEngine(city, calendar, policy),
    )


def _check_folder(config_dir: Path) -> None:
    """A missing folder, or files missing from it, named in one line."""
    if not config_dir.is_dir():
        raise ConfigError(str(config_dir), [Problem(
            "", f"no such configuration folder (one holds {', '.join(FILES)})")])
    missing = [name for name in FILES if not (config_dir / name).exists()]
    if missing:
        raise ConfigError(missing[0], [Problem(
            "", f"cannot read: not in {config_dir} (missing there: {', '.join(missing)})")])


def load_policy_json(obj: object) -> Policy:
    """A policy in the schema of `policy.toml`, from parsed JSON (the what-if API).

    Raises `ConfigError` (file "policy (JSON)").
    """
    return _validate("policy (JSON)", obj, Policy.model_validate)


def _load(config_dir: Path, name: str, validate: Callable[[Any], _M]) -> _M:
    return _validate(name, _read_toml(config_dir / name), validate)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(path.name, [Problem("", f"cannot read: {exc.strerror}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path.name, [Problem("", f"TOML syntax error: {exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path.name, [Problem("", "not UTF-8 text")]) from None


def _validate(name: str, data: object, validate: Callable[[Any], _M]) -> _M:
    try:
        return validate(data)
    except pydantic.ValidationError as exc:
        problems = [_problem(error, data) for error in exc.errors()]
        raise ConfigError(name, problems) from None


def _problem(error: Any, data: object) -> Problem:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidField):
        # a cross-field check: its own path, relative to the model that raised it
        return Problem(_format_path(loc + cause.path, data), cause.message, _show(cause.value))
    detail = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return Problem(_format_path(loc, data), "required, but missing")
    return Problem(_format_path(loc, data), detail, _show(error.get("input")))


def _format_path(loc: tuple[str | int, ...], data: object) -> str:
    """`("spot", 2, "opens")` → `spot[2](S03).opens`: the index and, if it has one, the
    id of the table, since a reader looks for the id in the file."""
    parts: list[str] = []
    node: object = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and 0 <= key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts.append(f"({node['id']})")
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def _describe(problem: Problem) -> str:
    where = f"{problem.path}: " if problem.path else ""
    if problem.value is None:
        return f"{where}{problem.detail}"
    return f"{where}{problem.detail} (got {problem.value})"


def _show(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
