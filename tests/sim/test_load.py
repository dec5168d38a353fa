"""The open-loop scheduler: latency counts from the scheduled time, runs are bounded."""

from __future__ import annotations

import asyncio
import threading
import time

from terminals_sim.load_command import terminals_line
from terminals_sim.metronome import THREAD_NAME
from terminals_sim.open_loop import OpenLoop, Outcome
from terminals_sim.stats import LatencyHistogram, percentile


async def test_latency_of_a_steady_server_is_its_service_time() -> None:
    async def send(i: int, scheduled: float) -> Outcome:
        await asyncio.sleep(0.02)
        return Outcome("accept/ok")

    stats = await OpenLoop(200, 0.5, send).run()
    assert stats.scheduled == stats.completed == 100
    assert stats.decisions == {"accept/ok": 100}
    figures = stats.latency_summary_ms()
    assert 19 <= figures["p50"] <= 40
    assert figures["max"] < 100


async def test_a_slow_server_shows_its_queue_no_coordinated_omission() -> None:
    """A server that serves one request per 10 ms (100/s) offered 200/s: each request
    waits for all before it. Measured from the scheduled time, the last ones wait ~0.5 s;
    a closed loop timing only the service would have reported 10 ms throughout."""
    one_at_a_time = asyncio.Lock()
    service_times: list[float] = []

    async def send(i: int, scheduled: float) -> Outcome:
        async with one_at_a_time:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            service_times.append(time.perf_counter() - started)
        return Outcome("accept/ok")

    stats = await OpenLoop(200, 0.5, send, drain_s=5).run()
    assert stats.completed == 100
    assert max(service_times) < 0.2  # a busy shared machine stretches a 10 ms sleep
    figures = stats.latency_summary_ms()
    # request i is due at 5 ms·i and done at ≥ 10 ms·(i+1): it waited ≥ 5 ms·i + 10 ms
    assert figures["p50"] >= 200
    assert figures["max"] >= 450
    # the scheduled times themselves were kept to, independent of the server
    assert max(stats.scheduled_at) < 0.5


MAX_START_LAG_P50_S = 0.00045


async def _start_lag_p50_s() -> float:
    """Median delay from each request's scheduled time to its send, at 230/s for 1 s."""
    lags: list[float] = []

    async def send(i: int, scheduled: float) -> Outcome:
        lags.append(time.perf_counter() - scheduled)
        return Outcome("accept/ok")

    stats = await OpenLoop(230, 1.0, send).run()
    assert stats.completed == 230 and len(lags) == 230
    return percentile(sorted(lags), 50)


async def test_requests_start_on_time_not_on_the_loops_next_ms() -> None:
    """The loop's own timer wakes in whole ms (~0.5 ms late on average, which would be in
    every latency); terminals_sim/metronome.py wakes it ~0.1 ms late. 230/s: due times
    fall at every phase of a 1 ms tick. Seen here: p50 ~0.1-0.2 ms, the old sleep 0.6-0.8.
    Up to three runs: a busy machine can slow one (0.47 ms once, in the whole suite);
    the old sleep stays above the bound in every run, its lag is the tick's."""
    medians = []
    for _ in range(3):
        medians.append(await _start_lag_p50_s())
        if medians[-1] < MAX_START_LAG_P50_S:
            break
    assert min(medians) < MAX_START_LAG_P50_S, medians
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]


async def test_run_is_bounded_by_duration_and_drain() -> None:
    async def send(i: int, scheduled: float) -> Outcome:
        await asyncio.sleep(60)
        return Outcome("never")

    started = time.perf_counter()
    stats = await OpenLoop(100, 0.2, send, drain_s=0.2).run()
    assert time.perf_counter() - started < 2
    assert stats.errors == {"unfinished": 20}
    assert stats.completed == 0  # nothing answered: no latency to report
    assert stats.latency_summary_ms()["p50"] == 0.0


async def test_errors_and_overflow_are_counted() -> None:
    gate = asyncio.Event()

    async def send(i: int, scheduled: float) -> Outcome:
        if i == 0:
            raise ConnectionResetError("boom")
        await gate.wait()
        return Outcome("timeout", error=True)

    loop = OpenLoop(100, 0.3, send, max_in_flight=10, drain_s=0.1)
    asyncio.get_running_loop().call_later(0.35, gate.set)
    stats = await loop.run()
    assert stats.scheduled == 30
    assert stats.errors["ConnectionResetError"] == 1
    assert stats.errors["generator_overflow"] == 30 - 1 - 10
    assert stats.errors["timeout"] == 10
    assert stats.dropped == 19


async def test_progress_ticks() -> None:
    lines: list[str] = []

    async def send(i: int, scheduled: float) -> Outcome:
        return Outcome("deny/replayed", mismatch={"problem": "x"} if i == 3 else None)

    stats = await OpenLoop(100, 0.35, send, tick_s=0.1,
                           on_tick=lambda s, now: lines.append(s.progress_line(now))).run()
    assert len(lines) >= 3 and "offered" in lines[-1] and "p99" in lines[-1]
    assert stats.mismatches == 1 and stats.mismatch_samples == [{"problem": "x"}]


def test_percentiles() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile([], 50) == 0.0
    histogram = LatencyHistogram()
    for v in values:
        histogram.record(v / 1000)
    assert abs(histogram.percentile(50) - 0.050) < 0.001
    assert abs(histogram.percentile(99) - 0.099) < 0.002


def test_the_set_up_line_says_why_fewer_terminals_run_than_asked() -> None:
    assert terminals_line(8, 8, "bus-taps") == "8 terminals"
    assert terminals_line(16, 20, "spot-gates") == \
        "16 terminals (20 asked: the configuration has 16 enabled for spot-gates)"
