"""The live feed: a background task that tails today's ledger into a `LiveBoard`.

Every tick (about a second) it reads the ledger from the last id it saw — the ledger is
shared, so this sees the decisions of every validator process on the same store — pings
the store, reads this process's latency histogram, and publishes one snapshot: one JSON
document, framed once as a Server-Sent Event and written as is to every dashboard client.
A client never waits for the aggregation and the aggregation never waits for a client.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import math
import time
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from validator.clock import Clock
from validator.metrics import Metrics
from validator.state.store import Store, StoreUnavailable
from validator.web.live import LiveBoard

log = logging.getLogger("validator.dashboard")

TICK_S = 1.0
BATCH = 200  # ledger records per round trip: ~1.5 ms of counting between yields, which
# bounds how long a busy day's catch-up holds validations back (1,000 was ~7 ms)
MAX_BATCHES_PER_TICK = 500  # catching up a busy day spreads over a few ticks
LATENCY_WINDOW_S = 60


class LatencyWindow:
    """p50/p99 of the decision histogram over the last minute, from its cumulative buckets.

    Keeps one copy of the bucket counts per tick; the difference between the newest and
    the oldest copy is the last minute's histogram, interpolated as `histogram_quantile`
    does in Prometheus.
    """

    def __init__(self, window_s: float = LATENCY_WINDOW_S) -> None:
        self.window_s = window_s
        self._history: collections.deque[tuple[float, list[float]]] = collections.deque()

    def observe(self, now: float, metrics: Metrics) -> dict[str, Any]:
        bounds, counts = _buckets(metrics)
        self._history.append((now, counts))
        # The base is the newest copy at least a window old: what came after it is the window.
        while len(self._history) > 2 and now - self._history[1][0] >= self.window_s:
            self._history.popleft()
        oldest = self._history[0][1]
        delta = [new - old for new, old in zip(counts, oldest, strict=True)]
        if len(self._history) == 1:
            delta = counts  # just started: the process's whole history is the best we have
        return {"p50_ms": _ms(quantile(0.5, bounds, delta)),
                "p99_ms": _ms(quantile(0.99, bounds, delta)),
                "count": int(delta[-1]) if delta else 0, "window_s": self.window_s}


def quantile(q: float, bounds: list[float], cumulative: list[float]) -> float | None:
    """The q-quantile of a histogram given as cumulative counts per upper bound."""
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    for i, count in enumerate(cumulative):
        if count >= rank:
            lower = bounds[i - 1] if i > 0 else 0.0
            below = cumulative[i - 1] if i > 0 else 0.0
            if math.isinf(bounds[i]):
                return lower  # beyond the last finite bucket: its bound is all we know
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bounds[i] - lower) * share
    return None


def _buckets(metrics: Metrics) -> tuple[list[float], list[float]]:
    bounds: list[float] = []
    counts: list[float] = []
    for family in metrics.decision_seconds.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bounds.append(float(sample.labels["le"]))
                counts.append(sample.value)
    return bounds, counts


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class LiveFeed:
    """Owns the board, the ledger cursor and the latest published snapshot."""

    def __init__(self, board: LiveBoard, store: Store, clock: Clock, metrics: Metrics,
                 time_zone: str, *, tick_s: float = TICK_S) -> None:
        self.board = board
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.tz = ZoneInfo(time_zone)
        self.tick_s = tick_s
        self.latency = LatencyWindow()
        self.seq = 0
        self.snapshot: dict[str, Any] = {}
        self.frame = b""  # the latest snapshot as one SSE event
        self.closed = False
        self._cursor: str | None = None
        self._changed = asyncio.Event()

    def local_date(self, now: float) -> dt.date:
        return dt.datetime.fromtimestamp(now, self.tz).date()

    async def run(self) -> None:
        """Tick until cancelled; a failing tick is logged and the next one tried."""
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:  # keep the screen alive whatever one tick hit
                log.exception("dashboard tick failed")
            await asyncio.sleep(max(0.05, self.tick_s - (time.monotonic() - started)))

    async def tick(self) -> None:
        now = self.clock.now()
        today = self.local_date(now)
        store_ok = True
        try:
            if today != self.board.day:
                await self._drain(self.board.day, limit=MAX_BATCHES_PER_TICK)
                self.board.rollover(today)
                self._cursor = None
            self.board.advance(now)
            await self._drain(today, limit=MAX_BATCHES_PER_TICK)
        except StoreUnavailable:
            store_ok = False
        if store_ok:
            store = await self._ping()
        else:
            self.metrics.store_up.set(0)
            store = {"ok": False, "ping_ms": None}
        self._export_gauges()
        snapshot = self.board.snapshot(now)
        snapshot["latency"] = self.latency.observe(now, self.metrics)
        snapshot["store"] = store
        self.publish(snapshot)

    def publish(self, snapshot: dict[str, Any]) -> None:
        self.seq += 1
        snapshot["seq"] = self.seq
        self.snapshot = snapshot
        self.frame = b"event: snapshot\nid: %d\ndata: %s\n\n" % (self.seq, orjson.dumps(snapshot))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seq: int, timeout_s: float) -> bool:
        """Wait until a snapshot newer than `seq` is out (True) or `timeout_s` passed."""
        if self.seq > seq or self.closed:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Release every waiting client (at shutdown)."""
        self.closed = True
        self._changed.set()

    async def _drain(self, day: dt.date, *, limit: int) -> None:
        cursor = self._cursor if day == self.board.day else None
        for _ in range(limit):
            with self.metrics.store_call("ledger_read"):
                entries = await self.store.ledger_read(day, cursor, BATCH)
            for entry_id, raw in entries:
                try:
                    self.board.add_json(raw)
                except (ValueError, TypeError, KeyError, AttributeError):
                    log.warning("skipping unreadable ledger record %s of %s", entry_id, day)
            if entries:
                cursor = entries[-1][0]
                self._cursor = cursor
            if len(entries) < BATCH:
                return
            await asyncio.sleep(0)  # let validations in between batches while catching up

    async def _ping(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            with self.metrics.store_call("ping"):
                await self.store.ping()
        except StoreUnavailable:
            self.metrics.store_up.set(0)
            return {"ok": False, "ping_ms": None}
        self.metrics.store_up.set(1)
        return {"ok": True, "ping_ms": round((time.perf_counter() - started) * 1000, 2)}

    def _export_gauges(self) -> None:
        for terminal_id, venue, last_seen in self.board.terminal_last_seen():
            self.metrics.terminal_last_seen.labels(terminal_id, venue).set(last_seen)
        for spot_id, entries, capacity in self.board.spot_use():
            self.metrics.spot_entries.labels(spot_id).set(entries)
            self.metrics.spot_capacity_ratio.labels(spot_id).set(entries / capacity)
