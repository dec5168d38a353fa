"""The open-loop load runner: requests leave on a fixed schedule, whatever the server does.

Request i is due at `t0 + i / rate`. Its latency is measured from that *scheduled* time,
not from when it was actually sent: if the server (or this generator) falls behind,
requests queue and the queueing shows as latency — there is no coordinated omission, as
a closed loop that waits for each answer before sending the next would have.

The run is bounded: scheduling stops after `duration_s`, the requests still in flight
get `drain_s` to finish, and the rest are cancelled and counted as `unfinished`. More than
`max_in_flight` outstanding requests means the target is hopelessly behind: further
requests are dropped (counted as `generator_overflow`) rather than piling up without
bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from terminals_sim.metronome import Metronome
from terminals_sim.stats import RunStats

__all__ = ["OpenLoop", "Outcome", "Sender"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one request: a decision label (`accept/ok`, `deny/replayed`,
    `HTTP 400`) or, with `error`, an error kind; `mismatch` if it broke an expectation."""

    label: str
    error: bool = False
    mismatch: dict[str, Any] | None = None


# send(i, scheduled) -> Outcome; `scheduled` is on the runner's clock (perf_counter).
Sender = Callable[[int, float], Awaitable[Outcome]]
Tick = Callable[[RunStats, float], None]


class OpenLoop:
    """Run `send` at `rate` per second for `duration_s` seconds, open loop."""

    def __init__(self, rate: float, duration_s: float, send: Sender, *, drain_s: float = 10.0,
                 max_in_flight: int = 20_000, on_tick: Tick | None = None,
                 tick_s: float = 1.0, clock: Callable[[], float] = time.perf_counter) -> None:
        if rate <= 0 or duration_s <= 0:
            raise ValueError("rate and duration must be positive")
        self.rate, self.duration_s, self.send = rate, duration_s, send
        self.drain_s, self.max_in_flight = drain_s, max_in_flight
        self.on_tick, self.tick_s, self.clock = on_tick, tick_s, clock
        self.stats = RunStats(rate=rate, duration_s=duration_s)
        self.t0 = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._next = self._total = 0  # the next request to launch, of how many
        self._all_launched = asyncio.Event()

    async def run(self) -> RunStats:
        self.t0 = self.clock() + 0.01  # a little lead, so request 0 is not born late
        ticker = asyncio.create_task(self._ticks(self.on_tick)) if self.on_tick else None
        try:
            await self._schedule()
            await self._drain()
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
        self.stats.elapsed_s = self.clock() - self.t0
        return self.stats

    async def _schedule(self) -> None:
        """Launch request i at t0 + i / rate: a `Metronome` wakes the loop on time (the
        loop's own timer would be ~0.5 ms late, and that lag is in every latency)."""
        self._total = int(self.rate * self.duration_s)
        self._launch_due()
        if self._all_launched.is_set():
            return
        metronome = Metronome(asyncio.get_running_loop(), t0=self.t0, interval=1 / self.rate,
                              count=self._total, position=lambda: self._next,
                              tick=self._launch_due, clock=self.clock)
        metronome.start()
        try:
            await self._all_launched.wait()
        finally:
            metronome.stop()

    def _launch_due(self) -> None:
        """Everything due by now, in one go: one wake-up for all of them."""
        now, i = self.clock(), self._next
        while i < self._total and self.t0 + i / self.rate <= now:
            self._launch(i, self.t0 + i / self.rate)
            i += 1
        self._next = i
        if i >= self._total:
            self._all_launched.set()

    def _launch(self, i: int, scheduled: float) -> None:
        self.stats.scheduled += 1
        if len(self._tasks) >= self.max_in_flight:
            self.stats.record(scheduled - self.t0, None, "generator_overflow", error=True)
            return
        task = asyncio.create_task(self._one(i, scheduled))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, i: int, scheduled: float) -> None:
        try:
            outcome = await self.send(i, scheduled)
        except asyncio.CancelledError:
            self.stats.record(scheduled - self.t0, self.clock() - scheduled, "unfinished",
                              error=True)
            raise
        except Exception as exc:  # a sender bug must show in the report, not kill the run
            outcome = Outcome(type(exc).__name__, error=True)
        self.stats.record(scheduled - self.t0, self.clock() - scheduled, outcome.label,
                          error=outcome.error, mismatch=outcome.mismatch)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _ticks(self, on_tick: Tick) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            on_tick(self.stats, self.clock() - self.t0)
