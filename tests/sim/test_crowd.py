"""The demo's population behaves as people do: a spot once, a few rides, a day that ends.

The long checks run the demo's own planner offline (`rehearsal.py`): hours of traffic
through the same footfall, crowd and oracle as `make run`, without a service.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from terminals_sim.cityconf import CityConfig
from terminals_sim.crowd import Crowd
from terminals_sim.footfall import Footfall, day_share
from terminals_sim.keyset import SimKeys
from terminals_sim.population import Population
from terminals_sim.rehearsal import rehearse

WEDNESDAY = dt.date(2026, 12, 2)  # a working day, no holiday


def _at(city: CityConfig, day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), city.tz)


def _gate(city: CityConfig, spot: str) -> object:
    return next(t for t in city.terminals if t.kind == "gate" and t.venue_id == spot)


def test_a_visitor_enters_each_spot_once_and_a_rider_rides_a_few_times(
        keys: SimKeys, city: CityConfig) -> None:
    crowd = Crowd(random.Random(3), size=100, reentry=0.0)
    crowd.arrive(Population(keys, city, seed=3).generate(400))
    noon = _at(city, WEDNESDAY, 12)
    gates = [t for t in city.terminals if t.kind == "gate"]
    bus = next(t for t in city.terminals if t.kind == "bus")
    visits = [(h.ref, g.venue_id) for g in gates * 8
              if (h := crowd.traveller(g, noon, ())) is not None]
    assert len(visits) == len(gates) * 8
    assert len(set(visits)) == len(visits)  # nobody entered a spot twice
    rides = [h.ref for _ in range(300) if (h := crowd.traveller(bus, noon, ())) is not None]
    per_rider = [rides.count(ref) for ref in set(rides)]
    assert max(per_rider) <= 4 + 2  # a rider's 2–4, or a sightseer's 0–2 more
    assert sum(per_rider) / len(per_rider) >= 1.5


def test_coming_back_to_a_spot_is_the_exception(keys: SimKeys, city: CityConfig) -> None:
    """With every visitor told to come back, the same check finds repeat entries: it
    can fail."""
    crowd = Crowd(random.Random(4), size=100, reentry=1.0)
    crowd.arrive(Population(keys, city, seed=4).generate(50))
    gate, noon = _gate(city, "S03"), _at(city, WEDNESDAY, 12)
    refs = [h.ref for _ in range(20) if (h := crowd.traveller(gate, noon, ())) is not None]
    assert len(set(refs)) == 1  # the first visitor, back again and again


def test_a_busy_holder_is_not_chosen_and_a_dry_reserve_says_so(
        keys: SimKeys, city: CityConfig) -> None:
    crowd = Crowd(random.Random(5), size=10, reentry=0.0)
    [holder] = Population(keys, city, seed=5).generate(1)
    crowd.arrive([holder])
    bus, noon = next(t for t in city.terminals if t.kind == "bus"), _at(city, WEDNESDAY, 12)
    assert crowd.traveller(bus, noon, ()) is holder
    assert crowd.traveller(bus, noon, {holder.ref}) is None  # in flight, nobody else left


def test_the_day_turns_and_yesterdays_crowd_goes_home(keys: SimKeys, city: CityConfig) -> None:
    crowd = Crowd(random.Random(6), size=100, reentry=0.0)
    crowd.arrive(Population(keys, city, seed=6).generate(10))
    bus = next(t for t in city.terminals if t.kind == "bus")
    late = dt.datetime.combine(WEDNESDAY, dt.time(23, 59), city.tz)
    first = crowd.traveller(bus, late, ())
    after_midnight = crowd.traveller(bus, late + dt.timedelta(minutes=2), ())
    assert first is not None and after_midnight is not None
    assert after_midnight is not first  # a new day's passenger, not last night's plan
    assert crowd.arrived == 2


def test_the_tourist_curve_is_spent_by_closing_time(city: CityConfig) -> None:
    spot = city.spots["S03"]
    assert day_share(spot, _at(city, WEDNESDAY, 7)) == 0.0
    assert 0.3 < day_share(spot, _at(city, WEDNESDAY, 12)) < 0.8
    assert day_share(spot, _at(city, WEDNESDAY, 18)) == 1.0


def test_a_spot_ahead_of_its_pace_draws_almost_nobody(city: CityConfig) -> None:
    terminals = [t for t in city.terminals if t.enabled]
    footfall = Footfall(city, terminals, random.Random(7), closed_try=0.0)
    ten = _at(city, WEDNESDAY, 10)

    def entries(spot: str, day: dt.date) -> int:
        return city.spots[spot].capacity_per_day if spot == "S01" else 0

    # S01 has had its whole capacity already this morning
    picks = [footfall.pick(ten, entries).venue for _ in range(3000)]
    fresh = [footfall.pick(ten, lambda s, d: 0).venue for _ in range(3000)]
    assert fresh.count("spot:S01") > 200  # the biggest spot, at its morning peak
    assert picks.count("spot:S01") < fresh.count("spot:S01") / 10


def test_eight_hours_of_demo_keep_a_realistic_deny_rate(keys: SimKeys, city: CityConfig) -> None:
    """A working day 09:00–17:00 at 1 scan/s: every hour a few per cent refused (faults,
    suspended holders, the odd visitor back at a spot), never the repeat-entry flood a
    fixed population gives."""
    hours = rehearse(keys, city, start=_at(city, WEDNESDAY, 9).timestamp(), hours=8, rate=1,
                     seed=11, fault_share=0.02)
    assert [h.start.hour for h in hours] == list(range(9, 17))
    for hour in hours:
        assert 3000 < hour.requests < 4200, hour.line()
        assert 0.01 < hour.deny_share < 0.06, hour.line()
        assert hour.repeat_share < 0.05, hour.line()
        assert hour.denies["already_entered_today"] < 0.02 * hour.requests, hour.line()
        assert hour.denies["capacity_reached"] == 0, hour.line()
    assert sum(h.gate_scans for h in hours) > 5000  # the spots were visited


def test_a_crowd_ten_times_the_spots_capacity_stays_below_it(
        keys: SimKeys, city: CityConfig) -> None:
    """Spots with a tenth of their capacity at 1 scan/s: as the default city at the
    demo's 10/s. Pacing keeps every spot from filling, so no capacity alarm for hours."""
    small = dataclasses.replace(city, spots={
        k: dataclasses.replace(s, capacity_per_day=s.capacity_per_day // 10)
        for k, s in city.spots.items()})
    hours = rehearse(keys, small, start=_at(small, WEDNESDAY, 8).timestamp(), hours=6, rate=1,
                     seed=12, fault_share=0.02)
    for hour in hours:
        assert hour.denies["capacity_reached"] <= 2, hour.line()
        assert hour.deny_share < 0.06, hour.line()


def test_the_night_and_the_next_morning(keys: SimKeys, city: CityConfig) -> None:
    """Across midnight: the spots closed (a rare `venue_closed`), the buses running, and
    the new day starting clean."""
    hours = rehearse(keys, city, start=_at(city, WEDNESDAY, 22).timestamp(), hours=4, rate=1,
                     seed=13, fault_share=0.02)
    assert [h.start.hour for h in hours] == [22, 23, 0, 1]
    assert hours[2].start.date() == WEDNESDAY + dt.timedelta(days=1)
    for hour in hours:
        assert hour.deny_share < 0.05, hour.line()
        assert hour.denies["venue_closed"] < 0.01 * hour.requests, hour.line()
        assert hour.gate_scans < 0.01 * hour.requests
