"""The demo stream's day without a service: what `make run` sends, hour by hour, and
how much of it the policy refuses.

`rehearse(keys, city, start=…, hours=…, rate=…)` walks simulated time through the same
`Footfall` (which terminal), `Crowd` (which holder) and `Oracle` (which answer) as the
demo stream, and feeds each expected answer back to the oracle as if the service had
given it. Deliberate faults are drawn at `fault_share` and counted as refused. No
request is built and nothing is sent, so hours of demo take seconds: the tests use it
to hold the demo to a realistic deny rate, and `demo --rehearse HOURS` prints it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from terminals_sim.cityconf import CityConfig
from terminals_sim.crowd import Crowd
from terminals_sim.expect import Expected
from terminals_sim.footfall import Footfall
from terminals_sim.keyset import SimKeys
from terminals_sim.oracle import Oracle
from terminals_sim.population import Population

__all__ = ["Hour", "rehearse"]

BATCH = 500  # holders drawn (and, in the demo, registered) at a time


@dataclass
class Hour:
    """What one simulated hour of demo traffic would have been."""

    start: dt.datetime  # local
    requests: int = 0
    gate_scans: int = 0
    repeat_entries: int = 0  # gate scans of a holder who entered that spot earlier today
    denies: Counter[str] = field(default_factory=Counter)  # reason -> count; "fault" too

    @property
    def deny_share(self) -> float:
        return sum(self.denies.values()) / self.requests if self.requests else 0.0

    @property
    def repeat_share(self) -> float:
        return self.repeat_entries / self.gate_scans if self.gate_scans else 0.0

    def line(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.denies.most_common())
        return (f"{self.start:%Y-%m-%d %H:%M} {self.requests:6d} requests, "
                f"{self.gate_scans:6d} at gates ({self.repeat_share:5.1%} repeat entries), "
                f"denied {self.deny_share:5.1%}{': ' + reasons if reasons else ''}")


def _body(answer: Expected) -> dict[str, Any]:
    """The response the service would give for `answer`, as far as the oracle reads it."""
    return {"decision": answer.decision, "reason": answer.reason, "rule": answer.rule,
            "fare": {"class": answer.fare_class}}


def rehearse(keys: SimKeys, city: CityConfig, *, start: float, hours: float,
             rate: float = 10.0, seed: int = 1, fault_share: float = 0.02,
             crowd_size: int = 1000) -> list[Hour]:
    """Hour-by-hour figures of `hours` of demo traffic at `rate` per second from `start`."""
    rng = random.Random(seed)
    population = Population(keys, city, seed=seed, now=int(start))
    crowd = Crowd(random.Random(seed + 1), size=crowd_size)
    terminals = [t for t in city.terminals if t.enabled and t.id in keys.terminal_secrets]
    footfall = Footfall(city, terminals, random.Random(seed + 2))
    oracle = Oracle(city, registry_loaded=True)
    entered: set[tuple[str, str, dt.date]] = set()
    figures: list[Hour] = []
    at, end = start, start + hours * 3600
    while True:
        at += rng.expovariate(rate)  # Poisson arrivals, as the demo sends them
        if at >= end:
            return figures
        local = city.local(at)
        if not figures or local.hour != figures[-1].start.hour:
            figures.append(Hour(local.replace(minute=0, second=0, microsecond=0)))
            oracle.forget_before(local.date(), at)
            entered = {k for k in entered if k[2] >= local.date()}
        hour = figures[-1]
        hour.requests += 1
        if len(crowd.reserve) < BATCH // 2:
            crowd.arrive(population.generate(BATCH))
            population.holders.clear()  # the crowd holds who is out; nobody else need
        if rng.random() < fault_share:
            hour.denies["fault"] += 1
            continue
        terminal = footfall.pick(local, oracle.entries)
        holder = crowd.traveller(terminal, local, ())
        assert holder is not None  # the reserve was just topped up
        if terminal.kind == "gate":
            hour.gate_scans += 1
            visit = (holder.ref, terminal.venue_id, local.date())
            hour.repeat_entries += visit in entered
            entered.add(visit)
        answer = oracle.expect(holder, terminal, at)[0]
        if answer.decision == "deny":
            hour.denies[str(answer.reason)] += 1
        oracle.observe(holder, terminal, at, companion=False, status=200, body=_body(answer))
