"""The live feed over a real store: batching, publishing, rollover; latency quantiles."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from tests.dashboard.records import record
from tests.web.harness import CONFIG_DIR, WED_10
from validator.clock import FixedClock
from validator.config import load_config
from validator.metrics import Metrics
from validator.state.store import Commit, Store
from validator.web.live import LiveBoard
from validator.web.livefeed import BATCH, LatencyWindow, LiveFeed, quantile

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
