"""Facts that only grow within a day — a full spot, a senior past the ride cap, an entry
made — cost the slow path (failed commit, snapshot, commit) once per process and day;
the next scans are decided on them in one round trip, and the next day forgets them.
A holder or card with a registry entry or a block reads first: two round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.web.harness import Service, age_birth
from validator.policy.types import Category
from validator.state.store import Block

GATE, OTHER_GATE, BUS = "T-GATE-S12-01", "T-GATE-S03-01", "T-BUS-K1-001"


@pytest.fixture
def config_dir(edit_config: Callable[[str, str, str], Path]) -> Path:
    return edit_config("city.toml", "capacity_per_day = 2000\n", "capacity_per_day = 7\n")


async def round_trips(service: Service) -> tuple[int, int]:
    """(snapshots, commits) this process has made so far."""
    counts = [await service.metric(f'validator_store_round_trip_seconds_count{{op="{op}"}}')
              for op in ("snapshot", "commit")]
    return int(counts[0] or 0), int(counts[1] or 0)


async def test_a_full_spot_turns_visitors_away_in_one_round_trip(service: Service) -> None:
    for _ in range(7):
        assert (await service.tap(GATE, service.holder(age_birth(30)))).body["reason"] == "ok"
    assert await round_trips(service) == (0, 7)
    first = await service.tap(GATE, service.holder(age_birth(30)))
    assert first.body["reason"] == "capacity_reached"
    assert await round_trips(service) == (1, 9)  # the guard failed: read, decided again
    for _ in range(3):
        late = await service.tap(GATE, service.holder(age_birth(30)))
        assert late.body["reason"] == "capacity_reached"
    assert await round_trips(service) == (1, 12)  # known full: one commit each
    other = await service.tap(OTHER_GATE, service.holder(age_birth(30)))
    assert other.body["reason"] == "ok"  # another spot is not full

    service.clock.advance(24 * 3600)  # Thursday: the count starts again
    assert (await service.tap(GATE, service.holder(age_birth(30)))).body["reason"] == "ok"


async def test_a_senior_past_the_cap_rides_on_at_full_fare_in_one_round_trip(
    service: Service,
) -> None:
    senior = service.holder(age_birth(72))
    fares = [(await service.tap(BUS, senior)).body["fare"]["class"] for _ in range(4)]
    assert fares == ["free"] * 4
    fifth = await service.tap(BUS, senior)
    assert fifth.body["fare"]["class"] == "full"
    assert await round_trips(service) == (1, 6)
    sixth = await service.tap(BUS, senior)
    assert sixth.body["fare"]["class"] == "full" and sixth.body["reason"] == "ok"
    assert await round_trips(service) == (1, 7)
    other = await service.tap(BUS, service.holder(age_birth(72)))
    assert other.body["fare"]["class"] == "free"  # the cap is per holder

    service.clock.advance(24 * 3600)
    assert (await service.tap(BUS, senior)).body["fare"]["class"] == "free"


async def test_a_second_entry_is_refused_in_one_round_trip(service: Service) -> None:
    senior = service.holder(age_birth(66))
    assert (await service.tap(OTHER_GATE, senior)).body["fare"]["class"] == "free"
    again = await service.tap(OTHER_GATE, senior)
    assert again.body["reason"] == "already_entered_today"
    assert await round_trips(service) == (1, 3)
    third = await service.tap(OTHER_GATE, senior)
    assert third.body["reason"] == "already_entered_today"
    assert await round_trips(service) == (1, 4)
    elsewhere = await service.tap(GATE, senior)  # entered S03, not S12
    assert elsewhere.body["fare"]["class"] == "free"


async def test_registry_holders_and_blocked_cards_read_first(service: Service) -> None:
    veteran = service.holder(age_birth(45))
    await service.store.put_holders([(veteran.ref, (Category("veteran"),))])
    assert (await service.tap(BUS, veteran)).body["rule"] == "bus.veteran"
    assert await round_trips(service) == (1, 2)  # guessed, status guard failed, read
    assert (await service.tap(BUS, veteran)).body["rule"] == "bus.veteran"
    assert await round_trips(service) == (2, 3)  # read first: no failed guess
    lost = service.holder(age_birth(45))
    await service.store.put_block("card", lost.card.card_no, Block(reason="lost"))
    for _ in range(2):
        assert (await service.tap(BUS, lost)).body["reason"] == "card_blocked"
    assert await round_trips(service) == (4, 6)  # 1 + 2 round trips after the first 3

    await service.store.delete_holder(veteran.ref)  # a stale memory costs a round trip only
    assert (await service.tap(BUS, veteran)).body["rule"] == "bus.standard"
    assert await round_trips(service) == (5, 7)
    service.clock.advance(24 * 3600)  # forgotten with the day: guessed again, right
    assert (await service.tap(BUS, veteran)).body["rule"] == "bus.standard"
    assert await round_trips(service) == (5, 8)
