"""Policy what-if: replay a day's ledgered scans through a candidate policy.

Policy makers ask "what would this change have done on day D?" before it goes live.
The day's ledger is read in commit order. Its accepted records give the *before*
figures as they were decided. Every scan that reached the policy — reason `ok`,
`venue_closed`, `capacity_reached`, `already_entered_today` or `companion_not_allowed`
— is decided again by an engine built from the live city and calendar and the
candidate policy, for the *after* figures. Scans denied before the policy (bad
credentials, blocks, replays, clock skew) stay denied under any policy.

Usage is recomputed as the replay goes, from the replay's own accepts: age-based rides
against the candidate's daily cap, free/half entries per spot, entries per spot
against capacity, and companion windows per terminal and holder with the candidate's
window length. So a candidate that lets a 67-year-old ride free at peak also uses up
that holder's cap sooner, exactly as it would have live.

A record keeps the holder's age, not the birth date (a ledger holds no birth date).
The policy sees only the age in completed years on the local scan date, so any birth
date giving that age on that date yields the same decision; `birth_date_for` picks one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from validator.ledger.reading import day_records
from validator.ledger.record import LedgerRecord
from validator.policy.engine import PolicyEngine, UnknownVenue
from validator.policy.types import Category, PolicyDecision, PolicyInput, Usage
from validator.state.store import LedgerReader

__all__ = ["REPLAYED_REASONS", "WhatIf", "WhatIfRow", "birth_date_for", "what_if"]

REPLAYED_REASONS = frozenset(
    {"ok", "venue_closed", "capacity_reached", "already_entered_today", "companion_not_allowed"}
)
_FIELDS = ("count_before", "count_after", "concession_fen_before", "concession_fen_after")


def birth_date_for(age: int, day: dt.date) -> dt.date:
    """A birth date that makes the holder exactly `age` on `day`: `age` years earlier.

    When `day` is 29 February and that earlier year is a common year, 28 February is
    taken: born 28 Feb, the holder completed `age` years on 28 Feb and still has them
    on 29 Feb (1 March would be one year short, as a 29 February birthday falls on
    1 March in common years). Any birth date with that age on `day` decides the same.
    """
    year = day.year - age
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year
        return dt.date(year, 2, 28)


@dataclass(slots=True)
class WhatIfRow:
    operator: str
    venue: str
    rule: str
    count_before: int = 0
    count_after: int = 0
    concession_fen_before: int = 0
    concession_fen_after: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, "venue": self.venue, "rule": self.rule,
                **{name: getattr(self, name) for name in _FIELDS}}


@dataclass(frozen=True, slots=True)
class WhatIf:
    day: dt.date
    policy_version: str
    replayed: int  # scans decided again by the candidate
    skipped: int  # scans whose venue the city no longer has
    rows: tuple[WhatIfRow, ...]  # sorted by operator, venue, rule

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(), "policy_version": self.policy_version,
            "replayed": self.replayed, "skipped": self.skipped,
            "rows": [r.as_dict() for r in self.rows],
            "totals": {name: sum(getattr(r, name) for r in self.rows) for name in _FIELDS},
        }


@dataclass(slots=True)
class _Replay:
    """The usage state of the day as the candidate would have built it."""

    window_s: int
    rides: Counter[str] = field(default_factory=Counter)  # holder -> age-based rides
    entered: set[tuple[str, str]] = field(default_factory=set)  # (spot, holder)
    entries: Counter[str] = field(default_factory=Counter)  # spot -> entries
    windows: dict[tuple[str, str], float] = field(default_factory=dict)  # (terminal, holder)

    def usage(self, record: LedgerRecord, holder: str, spot: str | None) -> Usage:
        opened = self.windows.get((record.terminal, holder))
        return Usage(
            concession_rides_today=self.rides[holder],
            entered_today=spot is not None and (spot, holder) in self.entered,
            spot_entries_today=0 if spot is None else self.entries[spot],
            companion_primary=opened is not None
            and 0 <= record.decided_at_unix - opened <= self.window_s,
        )

    def apply(self, d: PolicyDecision, record: LedgerRecord, holder: str, spot: str | None) -> None:
        """The effects the live commit would have applied (decide.py `_commit`)."""
        if not d.accepted:
            return
        if d.concession_ride:
            self.rides[holder] += 1
        if spot is not None and d.concession_entry:
            self.entered.add((spot, holder))
        if spot is not None and d.spot_entry:
            self.entries[spot] += 1
        if d.companion_used:
            self.windows.pop((record.terminal, holder), None)
        if d.primary:
            self.windows[(record.terminal, holder)] = record.decided_at_unix


async def what_if(store: LedgerReader, day: dt.date, candidate: PolicyEngine) -> WhatIf:
    """Replay local date `day` through `candidate` (built with the live city/calendar)."""
    rows: dict[tuple[str, str, str], WhatIfRow] = {}
    state = _Replay(candidate.companion_window_s)
    replayed = skipped = 0

    def row(record: LedgerRecord, rule: str) -> WhatIfRow:
        key = (record.operator, record.venue, rule)
        found = rows.get(key)
        if found is None:
            found = rows[key] = WhatIfRow(*key)
        return found

    async for record in day_records(store, day):
        if record.decision == "accept" and record.rule is not None:
            before = row(record, record.rule)
            before.count_before += 1
            before.concession_fen_before += (record.standard_fen or 0) - (record.amount_fen or 0)
        holder = record.holder_ref
        if record.reason not in REPLAYED_REASONS or holder is None or record.age is None:
            continue
        spot = _spot_of(record.venue)
        try:
            decision = candidate.evaluate(_input(record, state.usage(record, holder, spot)))
        except UnknownVenue:
            skipped += 1
            continue
        replayed += 1
        state.apply(decision, record, holder, spot)
        if decision.accepted and decision.rule is not None and decision.fare is not None:
            after = row(record, decision.rule)
            after.count_after += 1
            after.concession_fen_after += decision.fare.standard_fen - decision.fare.amount_fen
    return WhatIf(day, candidate.version, replayed, skipped,
                  tuple(rows[key] for key in sorted(rows)))


def _input(record: LedgerRecord, usage: Usage) -> PolicyInput:
    at = dt.datetime.fromisoformat(record.decided_at)  # local, with its offset
    assert record.age is not None
    return PolicyInput(
        venue=record.venue,
        at=at,
        birth_date=birth_date_for(record.age, at.date()),
        # The ledger keeps the categories active that day, without their `until`.
        categories=tuple(Category(c.code, c.grade) for c in record.categories),
        resident=bool(record.resident),
        companion=record.companion,
        usage=usage,
    )


def _spot_of(venue: str) -> str | None:
    kind, _, ident = venue.partition(":")
    return ident if kind == "spot" else None
