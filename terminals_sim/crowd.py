"""Who is out in the city today, and what each of them still means to do.

The demo stream does not cycle one fixed population through the gates (after a few
minutes everyone would have entered every spot, and most scans would be refused
`already_entered_today`). People arrive instead, each with an outing for the local day:

- a rider, met on a bus: 2–4 rides, now and then one spot;
- a sightseer, met at a gate: 1–3 different spots, 0–2 rides between them.

A spot is visited once per outing. A few sightseers (`reentry`, 2 %) come back to a
spot they already entered today — out for lunch and in again — which the policy refuses
for a free or half-price entry (`already_entered_today`) and allows at full price.
An outing ends when its plan is done, when the local day turns (the new day's people are
new arrivals) or when `size` more people have arrived since (they went home).

Arrivals come from a reserve of holders the caller keeps filled (`arrive`), already
registered with the service where they need registry entries or blocks.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import deque
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

from terminals_sim.cityconf import TerminalSpec
from terminals_sim.population import Holder

__all__ = ["Crowd", "Outing"]

REENTRY = 0.02
_SCAN = 64  # outings looked at per pick: a bounded search, like the load runner's
_Want = Callable[["Outing"], bool]


@dataclass(eq=False)
class Outing:
    """One holder's plan for one local day."""

    holder: Holder
    day: dt.date
    rides_left: int
    spots_left: int
    visited: set[str] = field(default_factory=set)

    def done(self) -> bool:
        return self.rides_left <= 0 and self.spots_left <= 0


class Crowd:
    """Hands out the holder of the next scan, following each one's outing."""

    def __init__(self, rng: random.Random, *, size: int = 1000,
                 reentry: float = REENTRY) -> None:
        self.rng, self.size, self.reentry = rng, size, reentry
        self.reserve: deque[Holder] = deque()
        self.day: dt.date | None = None
        self._new_day(None)
        self.arrived = 0  # outings begun, over the whole run

    def arrive(self, holders: Iterable[Holder]) -> None:
        """Holders ready to go out (registered where they need it)."""
        self.reserve.extend(holders)

    def traveller(self, terminal: TerminalSpec, local: dt.datetime,
                  busy: Container[str]) -> Holder | None:
        """The holder who scans at `terminal` at `local`, or None if the reserve ran dry.

        `busy` holds the holder_refs with a request in flight: they cannot be in two
        places at once."""
        if local.date() != self.day:
            self._new_day(local.date())
        if terminal.kind == "bus":
            outing = self._idle(self.riders, busy, lambda o: o.rides_left > 0)
            outing = outing or self._begin(local.date(), rider=True)
            if outing is not None:
                outing.rides_left -= 1
            return outing.holder if outing is not None else None
        spot = terminal.venue_id
        if self.been[spot] and self.rng.random() < self.reentry:
            back = self._idle(self.been[spot], busy, lambda o: True, drop_done=False)
            if back is not None:
                return back.holder
        outing = self._idle(self.sightseers, busy,
                            lambda o: o.spots_left > 0 and spot not in o.visited)
        outing = outing or self._begin(local.date(), rider=False)
        if outing is None:
            return None
        outing.spots_left -= 1
        outing.visited.add(spot)
        self.been[spot].append(outing)
        return outing.holder

    # --- inside -----------------------------------------------------------------------

    def _new_day(self, day: dt.date | None) -> None:
        """Everyone of the day before has gone home."""
        self.day = day
        self.riders: deque[Outing] = deque()
        self.sightseers: deque[Outing] = deque()
        self.out: deque[Outing] = deque()  # in order of arrival, for going home
        self.been: dict[str, deque[Outing]] = _Been()

    def _idle(self, queue: deque[Outing], busy: Container[str],
              wants: _Want, *, drop_done: bool = True) -> Outing | None:
        for _ in range(min(len(queue), _SCAN)):
            outing = queue[0]
            if drop_done and outing.done():
                queue.popleft()  # its plan is over: drop it for good
                continue
            queue.rotate(-1)
            if wants(outing) and outing.holder.ref not in busy:
                return outing
        return None

    def _begin(self, day: dt.date, *, rider: bool) -> Outing | None:
        if not self.reserve:
            return None
        rng = self.rng
        if rider:
            rides, spots = rng.choice((2, 2, 3, 3, 4)), int(rng.random() < 0.15)
        else:
            spots = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
            rides = rng.choices((0, 1, 2), weights=(40, 30, 30))[0]
        outing = Outing(self.reserve.popleft(), day, rides, spots)
        self.arrived += 1
        if rides:
            self.riders.append(outing)
        if spots:
            self.sightseers.append(outing)
        self.out.append(outing)
        while len(self.out) > self.size:
            gone = self.out.popleft()
            gone.rides_left = gone.spots_left = 0
        return outing


class _Been(dict[str, "deque[Outing]"]):
    """Per spot, the last visitors who entered it today (those who may come back)."""

    def __missing__(self, spot: str) -> deque[Outing]:
        found: deque[Outing] = deque(maxlen=200)
        self[spot] = found
        return found
