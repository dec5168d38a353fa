"""The live feed over a real store: batching, publishing, rollover; latency quantiles."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from tests.dashboard.records import record
from tests.web.harness import CONFIG_DIR, WED_10
from validator.clock import FixedClock
from validator.config_folder import load_config
from validator.metrics import Metrics
from validator.state.store import Commit, Store, StoreUnavailable
from validator.web.dashboard.board import LiveBoard
from validator.web.dashboard.feed import (
    BATCH,
    MAX_FOREIGN_ERRORS,
    ErrorTally,
    LatencyWindow,
    LiveFeed,
    quantile,
)

DAY = dt.date(2026, 12, 2)


async def append(store: Store, day: dt.date, n: int, at: float) -> None:
    for i in range(n):
        await store.commit(Commit(
            terminal_id="T-BUS-K1-001", request_id=f"r{at}-{i}", body_sha256="0" * 64,
            response=b"{}", ledger=record(at=at).to_json(), local_date=day))


def make_feed(store: Store, clock: FixedClock) -> LiveFeed:
    config = load_config(CONFIG_DIR)
    board = LiveBoard(config.city, config.terminals, DAY, started_at=clock.now())
    return LiveFeed(board, store, clock, Metrics(), config.city.time_zone)


async def test_feed_reads_past_one_batch_and_publishes_frames(store: Store) -> None:
    clock = FixedClock(WED_10)
    feed = make_feed(store, clock)
    await append(store, DAY, BATCH * 2 + 7, WED_10)
    await feed.tick()
    assert feed.snapshot["totals"]["accepted"] == BATCH * 2 + 7
    assert feed.seq == 1 and feed.frame.startswith(b"event: snapshot\nid: 1\ndata: {")
    await append(store, DAY, 3, WED_10 + 1)
    await feed.tick()  # from the last id on: nothing counted twice
    assert feed.snapshot["totals"]["accepted"] == BATCH * 2 + 10
    assert await feed.wait(1, timeout_s=0.01) is True
    assert await feed.wait(2, timeout_s=0.01) is False


async def test_feed_drains_yesterday_then_rolls_over(store: Store) -> None:
    clock = FixedClock(WED_10)
    feed = make_feed(store, clock)
    await append(store, DAY, 2, WED_10)
    await feed.tick()
    late = WED_10 + 14 * 3600 - 1  # 23:59:59, read only after midnight
    await append(store, DAY, 1, late)
    clock.set(WED_10 + 14 * 3600 + 1)
    await append(store, DAY + dt.timedelta(days=1), 4, clock.now())
    await feed.tick()
    snap = feed.snapshot
    assert snap["day"] == "2026-12-03" and snap["totals"]["accepted"] == 4
    k1 = next(t for t in snap["terminals"] if t["id"] == "T-BUS-K1-001")
    assert k1["last_seen"] == clock.now()


def test_quantiles_interpolate_like_prometheus() -> None:
    bounds = [0.001, 0.002, 0.005, math.inf]
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert quantile(0.5, bounds, [50, 100, 100, 100]) == pytest.approx(0.001)
    assert quantile(0.99, bounds, [0, 50, 100, 100]) == pytest.approx(0.00494)
    assert quantile(0.99, bounds, [0, 0, 0, 10]) == 0.005  # beyond the last bound


def test_latency_window_forgets_old_observations() -> None:
    metrics, window = Metrics(), LatencyWindow(window_s=60)
    for _ in range(100):
        metrics.decision_seconds.observe(0.2)  # a slow start
    window.observe(WED_10, metrics)
    for _ in range(100):
        metrics.decision_seconds.observe(0.0004)
    window.observe(WED_10 + 30, metrics)
    fast = window.observe(WED_10 + 61, metrics)  # the slow start is before the window
    assert fast["count"] == 100 and fast["p99_ms"] is not None and fast["p99_ms"] < 0.5
    assert window.observe(WED_10 + 95, metrics)["count"] == 0  # nothing new for a minute


# --- one reader per deployment: the lease, the shared board, the error stream ----------


def ledger_reads(feed: LiveFeed) -> float:
    """How many ledger reads this feed's process made (its store-call histogram)."""
    for family in feed.metrics.store_round_trip_seconds.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels["op"] == "ledger_read":
                return sample.value
    return 0.0


async def two_feeds(store: Store) -> tuple[FixedClock, LiveFeed, LiveFeed]:
    """Two processes' feeds on one store, each past its first tick: the first leads."""
    clock = FixedClock(WED_10)
    leader, follower = make_feed(store, clock), make_feed(store, clock)
    await leader.tick()
    await follower.tick()
    return clock, leader, follower


def terminal(snapshot: dict[str, Any], tid: str) -> dict[str, Any]:
    return next(t for t in snapshot["terminals"] if t["id"] == tid)


async def test_one_feed_reads_the_ledger_and_the_others_show_its_board(store: Store) -> None:
    clock, leader, follower = await two_feeds(store)
    assert leader.leading and not follower.leading
    assert follower.snapshot["feed"] == {"role": "follower", "board_age_s": 0.0}
    await append(store, DAY, 5, WED_10)
    await leader.tick()
    await follower.tick()
    for feed in (leader, follower):
        assert feed.snapshot["totals"]["accepted"] == 5
        assert terminal(feed.snapshot, "T-BUS-K1-001")["requests"] == 5
        assert feed.snapshot["store"]["ok"] is True and "latency" in feed.snapshot
    assert leader.snapshot["feed"]["role"] == "leader"
    assert ledger_reads(follower) == 0 and ledger_reads(leader) >= 2
    assert follower.seq == 2  # its own sequence: its clients' SSE ids
    clock.advance(3)
    await follower.tick()  # the board is the leader's, as of its last tick
    assert follower.snapshot["feed"]["board_age_s"] == 3.0


async def test_http_errors_of_every_process_reach_the_board_once(store: Store) -> None:
    _, leader, follower = await two_feeds(store)
    follower.errors.note("T-GATE-S03-01", 401, WED_10)
    follower.errors.note("T-GATE-S03-01", 401, WED_10 + 0.5)
    follower.errors.note("T-BUS-K1-001", 400, WED_10)
    leader.errors.note("FORGED-1", 401, WED_10)
    await follower.tick()  # reports its errors
    await leader.tick()  # reports its own, applies both
    await follower.tick()
    for feed in (leader, follower):
        snap = feed.snapshot
        assert terminal(snap, "T-GATE-S03-01")["bad_signatures"] == 2
        assert terminal(snap, "T-BUS-K1-001")["errors"] == 1
        assert snap["unregistered"] == [{"id": "FORGED-1", "bad_signatures": 1}]
        assert snap["fraud"]["counts"] == {"bad_terminal_signature": 3}
        feed_items = {(f["terminal"], f["count"]) for f in snap["fraud"]["feed"]}
        assert feed_items == {("T-GATE-S03-01", 2), ("FORGED-1", 1)}
    await leader.tick()
    assert terminal(leader.snapshot, "T-GATE-S03-01")["bad_signatures"] == 2  # not twice


async def test_a_successor_rebuilds_the_day_when_the_leader_stops(store: Store) -> None:
    _, leader, follower = await two_feeds(store)
    await append(store, DAY, 4, WED_10)
    follower.errors.note("T-GATE-S03-01", 401, WED_10)
    await follower.tick()
    await leader.tick()
    await leader.release()  # a graceful stop hands over at once
    await follower.tick()
    assert follower.leading and follower.snapshot["feed"]["role"] == "leader"
    assert follower.snapshot["totals"]["accepted"] == 4  # read again from the ledger
    assert terminal(follower.snapshot, "T-GATE-S03-01")["bad_signatures"] == 1
    await leader.tick()  # back, but the lease is taken: it follows
    assert not leader.leading and leader.snapshot["totals"]["accepted"] == 4


async def test_a_stalled_leader_is_replaced_and_steps_down(store: Store) -> None:
    clock = FixedClock(WED_10)
    leader, follower = make_feed(store, clock), make_feed(store, clock)
    await leader.tick()
    await append(store, DAY, 2, WED_10)
    await leader.tick()
    # The leader stalls past its lease (here: it is taken from under it).
    await store.feed_release(leader.holder)
    await follower.tick()
    assert follower.leading and follower.snapshot["totals"]["accepted"] == 2
    await append(store, DAY, 1, WED_10 + 1)
    await leader.tick()
    assert not leader.leading  # stepped down: its board is the new leader's
    await follower.tick()
    await leader.tick()
    assert leader.snapshot["totals"]["accepted"] == 3
    assert follower.snapshot["totals"]["accepted"] == 3


async def test_garbage_in_the_shared_parts_is_skipped(store: Store) -> None:
    _, leader, follower = await two_feeds(store)
    for junk in (b"nonsense", b"{}", b'[["T-GATE-S03-01", 401, 0, 1.0]]', b'[["x"]]'):
        await store.feed_errors_add(junk)
    follower.errors.note("T-GATE-S03-01", 401, WED_10)
    await follower.tick()
    await leader.tick()
    assert terminal(leader.snapshot, "T-GATE-S03-01")["bad_signatures"] == 1
    await follower.tick()
    good = follower.snapshot["totals"]
    await store.feed_publish(b"not json", 3.0)
    await follower.tick()  # keeps showing the last board it could read
    assert follower.snapshot["totals"] == good


async def test_errors_wait_for_a_store_that_is_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = make_feed(store, FixedClock(WED_10))

    async def unavailable(entry: bytes) -> str:
        raise StoreUnavailable("down")

    monkeypatch.setattr(store, "feed_errors_add", unavailable)
    feed.errors.note("T-BUS-K1-001", 400, WED_10)
    await feed.tick()
    assert feed.snapshot["store"]["ok"] is False
    monkeypatch.undo()
    await feed.tick()
    assert feed.snapshot["store"]["ok"] is True
    assert terminal(feed.snapshot, "T-BUS-K1-001")["errors"] == 1  # kept, then reported


async def test_a_leader_that_loses_its_lease_while_catching_up_stops_reading(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(WED_10)
    feed = make_feed(store, clock)
    feed.tick_s = 0.0  # renew between every two batches
    await append(store, DAY, BATCH * 3, WED_10)
    reads = 0
    real_read = store.ledger_read

    async def read_then_lose(day: dt.date, after: str | None = None,
                             count: int = 1000) -> list[tuple[str, bytes]]:
        nonlocal reads
        reads += 1
        if reads == 2:  # another process took the lease while this one read
            await store.feed_release(feed.holder)
            assert await store.feed_lease("elsewhere/1/aa", 3.0)
        return await real_read(day, after, count)

    monkeypatch.setattr(store, "ledger_read", read_then_lose)
    await feed.tick()
    assert reads == 2 and not feed.leading
    assert feed.snapshot["feed"]["role"] == "follower"
    assert feed.snapshot["totals"]["accepted"] == 0  # nothing shared yet: an empty board


def test_the_error_tally_is_bounded_but_keeps_registered_terminals() -> None:
    tally = ErrorTally({"T-GATE-S03-01"})
    for i in range(MAX_FOREIGN_ERRORS + 50):
        tally.note(f"FORGED-{i}", 401, WED_10 + i)
    tally.note("<script>", 401, WED_10)
    tally.note("T-GATE-S03-01", 400, WED_10)
    tally.note("T-GATE-S03-01", 400, WED_10 + 2)
    rows = tally.take()
    assert len(rows) == MAX_FOREIGN_ERRORS + 1 + 1  # the foreign ones, "(other)", ours
    assert ["(other)", 401, 51, WED_10 + MAX_FOREIGN_ERRORS + 49] in rows
    assert ["T-GATE-S03-01", 400, 2, WED_10 + 2] in rows
    assert not any(row[0] == "<script>" for row in rows)
    assert tally.take() == []
    tally.put_back([["T-GATE-S03-01", 400, 2, WED_10 + 2]])
    assert tally.take() == [["T-GATE-S03-01", 400, 2, WED_10 + 2]]
