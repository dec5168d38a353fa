"""The entitlement policy as a terminal evaluates it offline, from a bundle's `policy`,
`days` and `venues` (docs/policy.md; protocol §8.1, §8.3).

Written from the docs alone, as a vendor would port it: it imports nothing of
`validator`. The bundle carries the policy as data (the schema of config/policy.toml);
this is the order the docs give to that data:

- every rule of the venue's kind whose conditions hold makes its offer; the cheapest
  wins (free < half < full), the first listed rule winning ties;
- conditions: `category` (an active category of that code, `grades` narrowing it),
  `min_age` inclusive, `max_age` exclusive, `resident`; an `age_based` bus rule makes no
  offer once the holder's age-based concession rides today reach `daily_concession_cap`;
  `no_offer` windows (`days` any | working | non_working | holiday, `from` inclusive,
  `to` exclusive, local time);
- spots: closed → `venue_closed`; a free or half entry already today and a best offer
  of free or half → `already_entered_today`. A spot's capacity counts every gate's
  entries, which a terminal cannot see offline: it is not enforced here;
- a companion: the companion rule's category and grades, and an accepted primary of the
  same holder on this terminal within `companion_window_s`, not used by a companion yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

__all__ = ["Categories", "LocalPolicy", "Usage", "Verdict", "age_on"]

FARE_ORDER = {"free": 0, "half": 1, "full": 2}
Categories = list[dict[str, Any]]  # {"code", "grade" (int | None), "until" (date | None)}


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on `day` (a 29 February birthday falls on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Usage:
    """What this terminal itself accepted today for the holder in front of it."""

    concession_rides_today: int = 0
    entered_today: bool = False
    companion_primary: bool = False


@dataclass(frozen=True)
class Verdict:
    """The policy's answer; `fare` is `{"class", "amount_fen", "standard_fen"}` on accept."""

    reason: str  # "ok" or a policy.md deny reason
    rule: str | None = None
    fare: dict[str, Any] | None = None
    categories: tuple[str, ...] = ()
    concession_ride: bool = False  # counts towards the bus's daily cap
    concession_entry: bool = False  # a free or half spot entry

    @property
    def accepted(self) -> bool:
        return self.reason == "ok"


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


class LocalPolicy:
    """The bundle's policy for one venue, with its calendar days."""

    def __init__(self, fixed: dict[str, Any], venue: str) -> None:
        self.venue = venue
        self.kind = venue.partition(":")[0]
        policy = fixed["policy"]
        section = policy[self.kind]
        self.rules: list[dict[str, Any]] = list(section["rule"])
        self.companion: dict[str, Any] | None = section.get("companion")
        self.cap: int | None = section.get("daily_concession_cap")
        self.window_s: int = policy["companion_window_s"]
        facts = fixed["venues"][venue]
        self.standard_fen: int = facts["standard_fen"]
        self.hours = ((_time(facts["opens"]), _time(facts["closes"]))
                      if "opens" in facts else None)
        self.days = {ymd: (working, holiday) for ymd, working, holiday in fixed["days"]}
        self.resident_prefixes = tuple(fixed["resident_prefixes"])

    def resident(self, region: str) -> bool:
        return region.startswith(self.resident_prefixes)

    def day_kinds(self, day: dt.date) -> set[str]:
        """`any`, `working` or `non_working`, and `holiday`; a date the bundle does not
        list counts working days by weekday alone (policy.md)."""
        ymd = day.year * 10000 + day.month * 100 + day.day
        working, holiday = self.days.get(ymd, (day.weekday() < 5, False))
        return {"any", "working" if working else "non_working"} | ({"holiday"} if holiday
                                                                    else set())

    def _fare(self, fare_class: str) -> dict[str, Any]:
        amount = {"free": 0, "half": self.standard_fen // 2,
                  "full": self.standard_fen}[fare_class]
        return {"class": fare_class, "amount_fen": amount, "standard_fen": self.standard_fen}

    def _offers(self, rule: dict[str, Any], age: int, local: dt.datetime, kinds: set[str],
                categories: Categories, resident: bool, capped_out: bool) -> bool:
        if (rule.get("min_age") is not None and age < rule["min_age"]) or \
                (rule.get("max_age") is not None and age >= rule["max_age"]):
            return False
        if rule.get("category") is not None and \
                not _has(categories, rule["category"], rule.get("grades")):
            return False
        if rule.get("resident") is not None and rule["resident"] != resident:
            return False
        if self.kind == "bus" and rule.get("age_based") and capped_out:
            return False
        now = local.time()
        return not any(w["days"] in kinds and (w.get("from") is None
                                               or _time(w["from"]) <= now < _time(w["to"]))
                       for w in rule.get("no_offer") or ())

    def evaluate(self, local: dt.datetime, birth: dt.date, categories: Categories,
                 resident: bool, companion: bool, usage: Usage) -> Verdict:
        """Decide one scan at local time `local` with categories active that day."""
        day = local.date()
        active = [c for c in categories if c["until"] is None or day <= c["until"]]
        if self.hours is not None and not self.hours[0] <= local.time() < self.hours[1]:
            return Verdict("venue_closed")
        if companion:
            rule = self.companion
            if rule is None or not usage.companion_primary or \
                    not _has(active, rule["category"], rule.get("grades")):
                return Verdict("companion_not_allowed")
            return Verdict("ok", rule["id"], self._fare(rule["offer"]),
                           tuple(rule["relies_on"]))
        age = age_on(birth, day)
        kinds = self.day_kinds(day)
        capped_out = self.cap is not None and usage.concession_rides_today >= self.cap
        matching = [r for r in self.rules
                    if self._offers(r, age, local, kinds, active, resident, capped_out)]
        winner = min(matching, key=lambda r: FARE_ORDER[r["offer"]])
        concession = winner["offer"] != "full"
        if self.kind == "spot" and usage.entered_today and concession:
            return Verdict("already_entered_today")
        return Verdict("ok", winner["id"], self._fare(winner["offer"]),
                       tuple(winner["relies_on"]),
                       concession_ride=self.kind == "bus" and bool(winner.get("age_based"))
                       and concession,
                       concession_entry=self.kind == "spot" and concession)


def _has(categories: Categories, code: str, grades: list[int] | None) -> bool:
    return any(c["code"] == code and (grades is None or c["grade"] in grades)
               for c in categories)
