"""The policy dry run (`POST /v1/policy/evaluate`): the live engine on stated facts.

An operator states the scan (venue, local time, birth date, categories, residence,
companion, usage so far today) and gets back the decision object a terminal would
get — the same engine and configuration as live decisions, no state read or written
— without `request_id`/`txn_id`, plus every offer a rule made and the age the engine
computed, so the answer explains itself.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson

from validator.decision_body import render_decision
from validator.holders.registry import InvalidHolder, parse_categories
from validator.policy.engine import PolicyEngine, UnknownVenue
from validator.policy.types import PolicyDecision, PolicyInput, Usage

__all__ = ["InvalidEvaluation", "explain", "parse_evaluation"]

_FIELDS = {"venue", "at", "birth_date", "categories", "resident", "companion", "usage"}
_USAGE_COUNTS = ("concession_rides_today", "spot_entries_today")
_USAGE_FLAGS = ("entered_today", "companion_primary")
_MAX_COUNT = 10_000_000
_BIRTH_DATE = re.compile(r"[0-9]{8}")


class InvalidEvaluation(ValueError):
    """A dry-run request that does not fit the schema; the message names the field."""


def parse_evaluation(doc: object, engine: PolicyEngine) -> PolicyInput:
    """The engine input for a request body. Raises `InvalidEvaluation`."""
    if not isinstance(doc, dict):
        raise InvalidEvaluation("body: expected a JSON object")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise InvalidEvaluation(f"unknown field(s) {sorted(unknown)}")
    venue = doc.get("venue")
    if not isinstance(venue, str):
        raise InvalidEvaluation('venue: required, e.g. "bus:K1" or "spot:S01"')
    try:
        engine.venue_info(venue)
    except UnknownVenue:
        raise InvalidEvaluation(f"venue: {venue!r} is no route or spot of the city") from None
    at = _instant(doc.get("at"))
    birth = _birth_date(doc.get("birth_date"), _local_day(at, engine))
    try:
        categories = parse_categories(doc.get("categories", []))
    except InvalidHolder as exc:
        raise InvalidEvaluation(str(exc)) from None
    return PolicyInput(
        venue=venue, at=at, birth_date=birth, categories=categories,
        resident=_flag(doc, "resident"), companion=_flag(doc, "companion"),
        usage=_usage(doc.get("usage", {})),
    )


def explain(decision: PolicyDecision) -> dict[str, Any]:
    """The decision object of protocol §4 without ids, plus `offers` and `age`."""
    # Rendered by the very code that renders live decisions, so the two cannot drift.
    body: dict[str, Any] = orjson.loads(render_decision("", "", decision.reason, decision))
    del body["request_id"], body["txn_id"]
    body["offers"] = [
        {"rule": o.rule,
         "fare": {"class": o.fare.fare_class.value, "amount_fen": o.fare.amount_fen,
                  "standard_fen": o.fare.standard_fen},
         "categories": list(o.categories)}
        for o in decision.offers
    ]
    body["age"] = decision.age
    return body


def _instant(value: object) -> dt.datetime:
    # fromisoformat accepts more than RFC 3339; insist on a date, a time and an offset.
    if not isinstance(value, str) or len(value) < 19 or value[10] not in "Tt ":
        raise InvalidEvaluation('at: required, an RFC 3339 date-time with an offset, '
                                'e.g. "2026-12-02T08:10:00+08:00"')
    try:
        at = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidEvaluation(f"at: {value!r} is not an RFC 3339 date-time") from None
    if at.utcoffset() is None:
        raise InvalidEvaluation("at: the offset (Z or ±HH:MM) is required")
    return at


def _local_day(at: dt.datetime, engine: PolicyEngine) -> dt.date:
    """The city's date at `at`; a 400 when that is at the edge of what a date can be
    (9999-12-31T23:59:59+00:00 is in year 10000 in the city, 0001-01-01T00:00+23:59 in
    year 0), where the engine's date arithmetic would overflow."""
    try:
        day = engine.local_datetime(at).date()
    except OverflowError:
        day = dt.date.min
    if not dt.date.min < day < dt.date.max:
        raise InvalidEvaluation(f"at: {at.isoformat()} is out of range "
                                "(0001-01-02 to 9999-12-30 in the city)")
    return day


def _birth_date(value: object, local_day: dt.date) -> dt.date:
    if not isinstance(value, str) or not _BIRTH_DATE.fullmatch(value):
        raise InvalidEvaluation('birth_date: required, YYYYMMDD, e.g. "19500101"')
    try:
        birth = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise InvalidEvaluation(f"birth_date: {value} is not a real date") from None
    if birth > local_day:
        raise InvalidEvaluation(f"birth_date: {value} is after the local date of `at` "
                                f"({local_day.isoformat()})")
    return birth


def _flag(doc: dict[str, Any], name: str, where: str = "") -> bool:
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise InvalidEvaluation(f"{where}{name}: expected true or false")
    return value


def _usage(value: object) -> Usage:
    if not isinstance(value, dict):
        raise InvalidEvaluation("usage: expected an object")
    unknown = set(value) - set(_USAGE_COUNTS) - set(_USAGE_FLAGS)
    if unknown:
        raise InvalidEvaluation(f"usage: unknown field(s) {sorted(unknown)}")
    counts = {}
    for name in _USAGE_COUNTS:
        count = value.get(name, 0)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= _MAX_COUNT:
            raise InvalidEvaluation(f"usage.{name}: expected an integer 0-{_MAX_COUNT}")
        counts[name] = count
    return Usage(
        concession_rides_today=counts["concession_rides_today"],
        spot_entries_today=counts["spot_entries_today"],
        entered_today=_flag(value, "entered_today", "usage."),
        companion_primary=_flag(value, "companion_primary", "usage."),
    )
