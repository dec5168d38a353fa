"""Field types shared by the configuration models: ids, `HH:MM` times, dates, money.

Values come from TOML (native dates) or JSON (strings), so each type accepts what both
give and nothing looser: ints and booleans are strict, times are the string `HH:MM`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
)

FieldPath = tuple[str | int, ...]


class InvalidField(ValueError):
    """A value that fails a check involving other fields; `path` is relative to the
    model that raised it (or to the file, when raised outside validation)."""

    def __init__(self, path: FieldPath, value: object, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.value = value
        self.message = message


_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_hhmm(value: object) -> object:
    if isinstance(value, str) and _HHMM.fullmatch(value):
        return dt.time(int(value[:2]), int(value[3:]))
    raise ValueError("expected a local time as the string 'HH:MM' (00:00 to 23:59)")


def _parse_date(value: object) -> object:
    # TOML gives native dates, JSON gives strings; a date-time is a mistake either way.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a real date") from None
    raise ValueError("expected a date YYYY-MM-DD")


ClockTime = Annotated[
    dt.time,
    BeforeValidator(_parse_hhmm),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
]
Day = Annotated[dt.date, BeforeValidator(_parse_date)]
Id = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z0-9-]{3,40}$")]
VenueCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z0-9-]{1,40}$")]
RuleId = Annotated[str, StringConstraints(strict=True, pattern=r"^(bus|spot)\.[a-z0-9_]{1,40}$")]
CategoryCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
Fen = Annotated[int, Strict(), Field(ge=0, le=100_000_000)]
Count = Annotated[int, Strict(), Field(ge=0, le=10_000_000)]
Age = Annotated[int, Strict(), Field(ge=0, le=150)]
Grade = Annotated[int, Strict(), Field(ge=1, le=4)]
Flag = Annotated[bool, Strict()]


class FrozenModel(BaseModel):
    """Base of every configuration model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
