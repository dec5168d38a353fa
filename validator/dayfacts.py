"""What the decision pipeline remembers between scans of one local day (decide.py).

`DayFacts` holds the facts that only become more true within a local day — spots at
capacity, holders past the ride cap, holders who entered a spot — and which holders and
cards have a registry entry or a block, so that `Decider` can decide a scan on them
speculatively in one round trip (decide.py's docstring tells the whole path).
`VenueFacts` is a venue's configuration as the pipeline reads it on every scan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from validator.lru import Lru
from validator.state.store import Snapshot

__all__ = ["DAY_FACTS_SIZE", "EMPTY", "DayFacts", "VenueFacts"]

DAY_FACTS_SIZE = 65_536  # holders remembered per kind of day fact (capped, entered)


@dataclass(frozen=True, slots=True)
class VenueFacts:
    """A venue's configuration as the pipeline reads it on every scan, looked up once."""

    spot_id: str | None  # `S01` for `spot:S01`; None for a bus route
    spot_capacity: int | None
    standard_fen: int


EMPTY = Snapshot()


class DayFacts:
    """What only becomes more true within a local day, as far as this process has seen:
    spots at capacity, holders past the ride cap, holders who entered a spot. And which
    holders and cards have a registry entry or a block: not a one-way fact, but one
    that only decides the order of the round trips — such a scan would fail the
    speculative commit's status guard, so it reads first (two round trips, not three);
    a stale entry costs one round trip, never a wrong answer.

    `known` answers the snapshot a speculative decision starts from: empty, but for
    these facts (None: read first). Entries count every fare class and only grow, the
    day's concession rides only grow, an entry is not taken back: a decision made on
    them stays right whatever other processes commit meanwhile, so their commit needs no
    guard. Learnt from snapshots only (the slow path's), forgotten when the day changes.
    Holders are their `holder_ref` pseudonyms; the maps are bounded LRUs.
    """

    __slots__ = ("_capped", "_day", "_entered", "_full", "_ride_cap", "_status")

    def __init__(self, ride_cap: int) -> None:
        self._ride_cap = ride_cap
        self._day: dt.date | None = None
        self._full: dict[str, int] = {}  # spot id → its capacity
        self._capped: Lru[str, bool] = Lru(DAY_FACTS_SIZE)
        self._entered: Lru[str, bool] = Lru(DAY_FACTS_SIZE)
        self._status: Lru[str, bool] = Lru(DAY_FACTS_SIZE)  # "h|<ref>", "c|<card no>"

    def known(self, day: dt.date, holder_ref: str | None, card_no: str | None,
              venue: VenueFacts) -> Snapshot | None:
        """The snapshot to decide on speculatively; None if the holder or card is known
        to have a registry entry or a block (read first)."""
        if day != self._day:
            self._forget(day)
            return EMPTY
        status = self._status
        if (holder_ref is not None and status.get("h|" + holder_ref) is not None) or \
                (card_no is not None and status.get("c|" + card_no) is not None):
            return None
        spot = venue.spot_id
        if spot is not None:
            capacity = self._full.get(spot, 0)
            entered = holder_ref is not None and \
                self._entered.get(f"{spot}|{holder_ref}") is not None
            if capacity or entered:
                return Snapshot(spot_entries_today=capacity, entered_today=entered)
            return EMPTY
        if holder_ref is not None and self._capped.get(holder_ref) is not None:
            return Snapshot(concession_rides_today=self._ride_cap)
        return EMPTY

    def learn(self, day: dt.date, holder_ref: str | None, card_no: str | None,
              venue: VenueFacts, snap: Snapshot) -> None:
        if day != self._day:
            self._forget(day)
        spot, capacity = venue.spot_id, venue.spot_capacity
        if spot is not None and capacity is not None and snap.spot_entries_today >= capacity:
            self._full[spot] = capacity
        if card_no is not None and snap.card_block is not None:
            self._status.put("c|" + card_no, True)
        if holder_ref is None:
            return
        if snap.categories or snap.holder_block is not None:
            self._status.put("h|" + holder_ref, True)
        if spot is not None and snap.entered_today:
            self._entered.put(f"{spot}|{holder_ref}", True)
        if snap.concession_rides_today >= self._ride_cap:
            self._capped.put(holder_ref, True)

    def _forget(self, day: dt.date) -> None:
        self._day = day
        self._full.clear()
        self._capped = Lru(DAY_FACTS_SIZE)
        self._entered = Lru(DAY_FACTS_SIZE)
        self._status = Lru(DAY_FACTS_SIZE)
