"""The live feed: a background task that keeps the dashboard's board, once per deployment.

Every process that serves the dashboard runs a feed, but only one of them — the one
holding the store's lease (`Store.feed_lease`, renewed every tick, lost after
`LEASE_TICKS` missed ones) — reads the ledger. The leader tails today's ledger from the
last id it saw (the ledger is shared, so this sees the decisions of every process on
the store) into a `LiveBoard`, applies the HTTP errors that every process reports to
the error stream, and publishes the board to the store. The others, followers, read
that one document. So the ledger is read once per deployment, not once per process:
with N processes the feed's cost no longer grows as N × the decision rate.

Every tick each process also reports the HTTP errors it answered since the last one
(one stream entry, counts per terminal and status: a bad terminal signature leaves no
ledger record, so this is how it reaches the board), pings the store, reads its own
latency histogram, and publishes one snapshot — the board plus those per-process
parts — framed once as a Server-Sent Event and written as is to every dashboard client.
A client never waits for the aggregation and the aggregation never waits for a client.

A process that takes the lease over (the leader stopped or stalled) rebuilds the day
from the ledger and the error stream, as a starting process does. Errors reported on
the day before the board's day, or beyond the stream's `FEED_ERRORS_KEPT` entries, are
not counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Collection
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from validator.clock import Clock
from validator.metrics import Metrics
from validator.state.store import Store, StoreUnavailable
from validator.web.dashboard.board import LiveBoard, terminal_label
from validator.web.errors import OFFLINE_EVENTS, ErrorReporting

log = logging.getLogger("validator.dashboard")

TICK_S = 1.0
BATCH = 200  # ledger records per round trip: ~1.5 ms of counting between yields, which
# bounds how long a busy day's catch-up holds validations back (1,000 was ~7 ms)
MAX_BATCHES_PER_TICK = 500  # catching up a busy day spreads over a few ticks
LATENCY_WINDOW_S = 60
LEASE_TICKS = 3  # the lease and the published board outlive this many ticks
MAX_FOREIGN_ERRORS = 100  # (claimed id, status) pairs of unregistered ids per tick


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


class ErrorTally:
    """The HTTP errors this process answered since the last tick, by (terminal, status).

    Unregistered ids (claimed by bad signatures) are kept as the board shows them and
    bounded: past `MAX_FOREIGN_ERRORS` pairs per tick they count as "(other)", so a
    flood of forged ids cannot grow a tick's report.
    """

    def __init__(self, registered: Collection[str]) -> None:
        self._registered = registered
        self._counts: dict[tuple[str, int], list[float]] = {}  # → [count, latest at]
        self._foreign = 0

    def note(self, terminal_id: str, status: int, at: float, count: int = 1) -> None:
        key = (terminal_id, status)
        item = self._counts.get(key)
        if item is None:
            if terminal_id not in self._registered:
                label = terminal_label(terminal_id)
                if self._foreign >= MAX_FOREIGN_ERRORS:
                    label = "(other)"
                key = (label, status)
                item = self._counts.get(key)
            if item is None:
                self._foreign += key[0] not in self._registered
                item = self._counts[key] = [0, at]
        item[0] += count
        item[1] = max(item[1], at)

    def take(self) -> list[list[Any]]:
        """Everything noted, as [terminal, status, count, latest at] rows; then empty."""
        rows = [[tid, status, int(n), at] for (tid, status), (n, at) in self._counts.items()]
        self._counts.clear()
        self._foreign = 0
        return rows

    def put_back(self, rows: list[list[Any]]) -> None:
        """Rows `take` gave that could not be reported: counted again at the next tick."""
        for tid, status, n, at in rows:
            self.note(tid, status, at, n)


class ErrorReporter:
    """Sends this process's HTTP errors to the store's error stream, once a tick.

    Every process has one, with or without the dashboard: the live feed calls `report`
    in its own tick; a `--no-dashboard` process runs `run`. Rows that could not be sent
    (the store away) are kept and sent with the next tick's.
    """

    def __init__(self, store: Store, metrics: Metrics, registered: Collection[str], *,
                 tick_s: float = TICK_S) -> None:
        self.store = store
        self.metrics = metrics
        self.tick_s = tick_s
        self.tally = ErrorTally(registered)

    def note(self, terminal_id: str, status: int, at: float, count: int = 1) -> None:
        """A terminal request of this process answered with an HTTP error, or an offline
        terminal's event (`errors.OFFLINE_EVENTS`)."""
        self.tally.note(terminal_id, status, at, count)

    async def report(self) -> None:
        """Send what was noted since the last report (StoreUnavailable: kept for later)."""
        rows = self.tally.take()
        if not rows:
            return
        try:
            with self.metrics.store_call("feed_errors"):
                await self.store.feed_errors_add(orjson.dumps(rows))
        except StoreUnavailable:
            self.tally.put_back(rows)
            raise

    async def run(self) -> None:
        """Report every tick until cancelled (processes without a live feed)."""
        while True:
            await asyncio.sleep(self.tick_s)
            # Unsent rows are kept; the outage itself is counted by the store's callers.
            with contextlib.suppress(StoreUnavailable):
                await self.report()


def _error_rows(raw: bytes) -> list[tuple[str, int, int, float]]:
    """An error stream entry → its rows; ValueError for anything not shaped as written."""
    rows = orjson.loads(raw)
    if not isinstance(rows, list):
        raise ValueError("not a list")
    parsed = []
    for row in rows:
        match row:
            case [str(tid), int(status), int(n), int() | float() as at] if n > 0:
                parsed.append((tid, status, n, float(at)))
            case _:
                raise ValueError("not a [terminal, status, count, at] row")
    return parsed


class _LostLease(Exception):
    """The lease went to another process while this one was reading."""


class LiveFeed:
    """Owns the board (when leading), the cursors, and the latest published snapshot."""

    def __init__(self, board: LiveBoard, store: Store, clock: Clock, metrics: Metrics,
                 time_zone: str, *, tick_s: float = TICK_S, holder: str | None = None,
                 errors: ErrorReporting | None = None) -> None:
        self.board = board  # filled only while leading; else empty, shown if nothing is shared
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.tz = ZoneInfo(time_zone)
        self.tick_s = tick_s
        self.holder = holder or f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.errors: ErrorReporting = errors or ErrorReporter(store, metrics, board.registry,
                                                              tick_s=tick_s)
        self.latency = LatencyWindow()
        self.leading = False
        self.seq = 0
        self.snapshot: dict[str, Any] = {}
        self.frame = b""  # the latest snapshot as one SSE event
        self.closed = False
        self._cursor: str | None = None
        self._errors_cursor: str | None = None
        self._shared: dict[str, Any] | None = None  # the leader's board, as last read
        self._leased_at = -math.inf  # time.monotonic() of the last renewal
        self._store_ok_at: float | None = None  # clock time the store last answered
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
            await self.errors.report()
            if await self._lease():
                board = await self._lead(now, today)
            else:
                board = await self._follow(now, today)
        except (StoreUnavailable, _LostLease) as exc:
            store_ok = not isinstance(exc, StoreUnavailable)
            board = self._last_board(now)
        if store_ok:
            store = await self._ping()
        else:
            self.metrics.store_up.set(0)
            store = {"ok": False, "ping_ms": None}
        if store["ok"]:
            self._store_ok_at = now
        # Since when the figures are frozen, for the page to say (None: not since start).
        store["last_ok_at"] = self._store_ok_at
        self._export_gauges(board)
        snapshot = dict(board)
        snapshot["latency"] = self.latency.observe(now, self.metrics)
        snapshot["store"] = store
        age = now - board["now"] if isinstance(board.get("now"), int | float) else 0.0
        snapshot["feed"] = {"role": "leader" if self.leading else "follower",
                            "board_age_s": round(max(0.0, age), 1)}
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

    async def release(self) -> None:
        """At shutdown: report the last errors, and give the lease up so that another
        process leads at once."""
        await self.errors.report()
        if self.leading:
            self.leading = False
            await self.store.feed_release(self.holder)

    # --- roles ---------------------------------------------------------------------

    async def _lease(self) -> bool:
        with self.metrics.store_call("feed_lease"):
            held = await self.store.feed_lease(self.holder, LEASE_TICKS * self.tick_s)
        self._leased_at = time.monotonic()
        self.metrics.feed_leader.set(1 if held else 0)
        return held

    async def _keep_lease(self) -> None:
        """Renew the lease within a long catch-up, before it could lapse."""
        if time.monotonic() - self._leased_at >= self.tick_s and not await self._lease():
            self._demote()
            raise _LostLease

    async def _lead(self, now: float, today: dt.date) -> dict[str, Any]:
        if not self.leading:
            # Just took over: whatever this process saw before, rebuild the day whole.
            self.leading = True
            self.board = self.board.fresh(today)
            self._cursor = self._errors_cursor = None
            log.info("live feed: this process reads the ledger now (%s)", self.holder)
        if today != self.board.day:
            await self._drain(self.board.day, limit=MAX_BATCHES_PER_TICK)
            self.board.rollover(today)
            self._cursor = None
        self.board.advance(now)
        await self._drain(today, limit=MAX_BATCHES_PER_TICK)
        await self._drain_errors()
        board = self.board.snapshot(now)
        with self.metrics.store_call("feed_publish"):
            await self.store.feed_publish(orjson.dumps(board), LEASE_TICKS * self.tick_s)
        return board

    async def _follow(self, now: float, today: dt.date) -> dict[str, Any]:
        if self.leading:
            self._demote()
        with self.metrics.store_call("feed_board"):
            raw = await self.store.feed_board()
        if raw is not None:
            try:
                shared = orjson.loads(raw)
                if not isinstance(shared, dict):
                    raise ValueError("not an object")
                self._shared = shared
            except ValueError:
                log.warning("the published board does not parse; showing the last one")
        if self.board.day != today:
            self.board = self.board.fresh(today)
        return self._last_board(now)

    def _demote(self) -> None:
        log.info("live feed: another process reads the ledger now")
        self.leading = False
        self.board = self.board.fresh(self.board.day)  # its figures go stale from now
        self.metrics.feed_leader.set(0)

    def _last_board(self, now: float) -> dict[str, Any]:
        if self.leading:
            return self.board.snapshot(now)
        return self._shared if self._shared is not None else self.board.snapshot(now)

    # --- reading ---------------------------------------------------------------------

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
            await self._keep_lease()

    async def _drain_errors(self) -> None:
        """Apply the error stream's new entries: those of the board's day count."""
        for _ in range(MAX_BATCHES_PER_TICK):
            with self.metrics.store_call("feed_errors"):
                entries = await self.store.feed_errors_read(self._errors_cursor, BATCH)
            for entry_id, raw in entries:
                try:
                    rows = _error_rows(raw)
                except ValueError:
                    log.warning("skipping unreadable error report %s", entry_id)
                    continue
                for tid, status, n, at in rows:
                    try:
                        day = self.local_date(at)
                    except (ValueError, OverflowError, OSError):
                        continue  # a time no clock gives
                    if status in OFFLINE_EVENTS:  # a bundle fetch or an upload
                        self.board.offline.note(tid, status, at, n,
                                                today=day == self.board.day)
                    elif day == self.board.day:
                        self.board.http_error(tid, status, at, n)
            if entries:
                self._errors_cursor = entries[-1][0]
            if len(entries) < BATCH:
                return
            await asyncio.sleep(0)

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

    def _export_gauges(self, board: dict[str, Any]) -> None:
        """The board's per-terminal and per-spot figures as gauges, in every process
        (from the shared board in followers: the same values whichever is scraped)."""
        try:
            for row in board.get("terminals", ()):
                if row["last_seen"] is not None:
                    self.metrics.terminal_last_seen.labels(row["id"], row["venue"]).set(
                        row["last_seen"])
            for row in board.get("spots", ()):
                self.metrics.spot_entries.labels(row["id"]).set(row["entries"])
                self.metrics.spot_capacity_ratio.labels(row["id"]).set(
                    row["entries"] / row["capacity"])
        except (KeyError, TypeError, ZeroDivisionError):
            log.warning("the board's terminals or spots are not as expected; gauges kept")
