"""Where the demo's next passenger turns up: a terminal drawn by the flow of the hour.

Bus readers follow `bus_flow` (peaks at 08:00 and 18:00). A spot follows the tourist
curve `spot_flow` inside its opening hours, scaled by its size (its daily capacity, so
the old town draws ten times the crowd of the smallest spot), shared among its gates.

Spots are paced: a spot whose entries today run ahead of `pace` (60 %) of its capacity,
prorated by how much of its day's curve has passed, draws almost nobody until the day
catches up. A real crowd spreads to other sights when a queue is long; for the demo
this means that at any rate no spot fills and the dashboard's capacity alert stays off.

A few passengers (`closed_try`, 0.3 %) walk up to a gate whose spot is closed — a late
visitor, an early one — and are told `venue_closed`, as at a real gate.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Callable, Sequence
from functools import cache

from terminals_sim.cityconf import CityConfig, Spot, TerminalSpec
from terminals_sim.terminals import bus_flow, spot_flow

__all__ = ["Footfall", "day_share"]

# entries a spot has had on a local day: (spot id, day) -> count
EntriesToday = Callable[[str, dt.date], int]

PACE = 0.6
SLACK = 0.02  # of capacity, so the first visitors of the morning are not held back
HELD_BACK = 0.02  # what is left of a spot's draw while it runs ahead of its pace
CLOSED_TRY = 0.003
_REFERENCE_DAY = dt.date(2026, 1, 5)  # the curves depend on the time of day only


@cache
def _cumulative(opens: dt.time, closes: dt.time) -> tuple[list[float], float]:
    """The tourist curve summed minute by minute over a day: (running sums, total)."""
    sums, total = [], 0.0
    start = dt.datetime.combine(_REFERENCE_DAY, dt.time())
    for minute in range(24 * 60):
        total += spot_flow(start + dt.timedelta(minutes=minute), opens, closes)
        sums.append(total)
    return sums, total


def day_share(spot: Spot, local: dt.datetime) -> float:
    """How much of the spot's daily flow has passed by `local` (0 before it opens, 1 after)."""
    sums, total = _cumulative(spot.opens, spot.closes)
    minute = local.hour * 60 + local.minute
    return sums[minute] / total if total else 1.0


class Footfall:
    """Draws the terminal of the next request among `terminals` (enabled, with secrets)."""

    def __init__(self, city: CityConfig, terminals: Sequence[TerminalSpec], rng: random.Random,
                 *, pace: float = PACE, closed_try: float = CLOSED_TRY) -> None:
        self.city, self.rng, self.pace, self.closed_try = city, rng, pace, closed_try
        self.buses = [t for t in terminals if t.kind == "bus"]
        self.gates = [t for t in terminals if t.kind == "gate"]
        if not self.buses and not self.gates:
            raise LookupError("no enabled bus reader or gate with a secret")
        self._gates_of: dict[str, int] = {}
        for gate in self.gates:
            self._gates_of[gate.venue_id] = self._gates_of.get(gate.venue_id, 0) + 1
        biggest = max((s.capacity_per_day for s in city.spots.values()), default=1)
        self._size = {s.id: s.capacity_per_day / biggest for s in city.spots.values()}

    def pick(self, local: dt.datetime, entries: EntriesToday) -> TerminalSpec:
        """A terminal drawn by the flows at `local`, given each spot's entries today."""
        closed = [g for g in self.gates if not self.city.spots[g.venue_id].is_open(local)]
        if closed and self.rng.random() < self.closed_try:
            return self.rng.choice(closed)
        candidates = self.buses + self.gates
        weights = [self.weight(t, local, entries) for t in candidates]
        if not any(weights):
            return self.rng.choice(candidates)
        # cumulative weights and bisect: one draw among ~40 terminals, many per second
        running, total = [], 0.0
        for weight in weights:
            total += weight
            running.append(total)
        return candidates[min(bisect.bisect(running, self.rng.random() * total),
                              len(candidates) - 1)]

    def weight(self, terminal: TerminalSpec, local: dt.datetime, entries: EntriesToday) -> float:
        """The relative chance that the next passenger turns up at `terminal`."""
        if terminal.kind == "bus":
            return bus_flow(local)
        spot = self.city.spots[terminal.venue_id]
        # at the morning peak of the sights, the spots together draw a little more than
        # the buses; a spot's share is its size
        flow = spot_flow(local, spot.opens, spot.closes) * self._size[spot.id]
        flow /= self._gates_of[spot.id]
        if flow and self.ahead_of_pace(spot, local, entries):
            flow *= HELD_BACK
        return flow

    def ahead_of_pace(self, spot: Spot, local: dt.datetime, entries: EntriesToday) -> bool:
        allowed = spot.capacity_per_day * (self.pace * day_share(spot, local) + SLACK)
        return entries(spot.id, local.date()) >= allowed
