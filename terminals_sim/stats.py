"""Figures of a load run: latencies, decisions, errors, mismatches, a per-second timeline.

Every latency is measured from the request's *scheduled* time (see `open_loop.py`), so a
generator or server that falls behind shows up as latency instead of hiding as a lower
request rate. Exact percentiles for the report come from all samples; the progress line
uses a log-bucketed histogram, which is cheap to update and to query every second.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LatencyHistogram", "RunStats", "percentile"]

MAX_MISMATCH_SAMPLES = 50


def percentile(sorted_values: list[float] | array[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(math.ceil(q / 100 * len(sorted_values)), 1)
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


class LatencyHistogram:
    """Latencies in buckets 1 % wide (log scale) from 1 µs up: ±1 % percentiles."""

    _BASE = math.log(1.01)

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0

    def record(self, seconds: float) -> None:
        micros = max(seconds * 1e6, 1.0)
        self.buckets[int(math.log(micros) / self._BASE)] += 1
        self.count += 1

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (upper edge of its bucket)."""
        if not self.count:
            return 0.0
        target, seen = max(math.ceil(q / 100 * self.count), 1), 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= target:
                return math.exp((index + 1) * self._BASE) / 1e6
        return 0.0  # unreachable: the counts add up to self.count


@dataclass
class RunStats:
    """Everything recorded during one open-loop run (times in seconds from its start)."""

    rate: float
    duration_s: float
    scheduled: int = 0
    completed: int = 0
    dropped: int = 0
    scheduled_at: array[float] = field(default_factory=lambda: array("d"))
    latencies: array[float] = field(default_factory=lambda: array("d"))
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    decisions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    mismatches: int = 0
    mismatch_samples: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0  # from the first scheduled request to the last completion
    offered_in: Counter[int] = field(default_factory=Counter)  # second -> requests due

    def record(self, scheduled_at: float, latency: float | None, label: str, *,
               error: bool = False, mismatch: dict[str, Any] | None = None) -> None:
        """One finished request: `label` is `decision/reason`, `HTTP nnn` or an error kind.

        Only answers have a latency: a failed attempt (connection refused, timeout,
        unfinished) is counted by kind, never in the percentiles — a refused connection
        takes a millisecond and would make a dead service look fast. `latency` None means
        the request was never sent (the generator dropped it).
        """
        (self.errors if error else self.decisions)[label] += 1
        self.offered_in[int(scheduled_at)] += 1
        if error or latency is None:
            self.dropped += latency is None
            return
        self.completed += 1
        self.scheduled_at.append(scheduled_at)
        self.latencies.append(latency)
        self.histogram.record(latency)
        if mismatch is not None:
            self.mismatches += 1
            if len(self.mismatch_samples) < MAX_MISMATCH_SAMPLES:
                self.mismatch_samples.append(mismatch)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def progress_line(self, now_s: float) -> str:
        """One line per second while running: offered/achieved rate and latency so far."""
        offered = self.scheduled / now_s if now_s > 0 else 0.0
        achieved = self.completed / now_s if now_s > 0 else 0.0
        return (f"[{now_s:6.1f}s] offered {offered:7.0f}/s achieved {achieved:7.0f}/s  "
                f"p50 {self.histogram.percentile(50) * 1e3:7.2f} ms  "
                f"p99 {self.histogram.percentile(99) * 1e3:7.2f} ms  "
                f"errors {self.error_count}  mismatches {self.mismatches}")

    def latency_summary_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        figures = {f"p{q:g}": percentile(ordered, q) * 1e3 for q in (50, 90, 99, 99.9)}
        figures["max"] = (ordered[-1] if ordered else 0.0) * 1e3
        figures["mean"] = (sum(ordered) / len(ordered) if ordered else 0.0) * 1e3
        return figures

    def timeline(self) -> list[dict[str, float]]:
        """Per second from the start until the last answer (the drain included): requests
        scheduled in it ("offered", failed ones too), answers completed in it, and the
        latency of the answered requests scheduled in it (p50, p99, max, in ms)."""
        done_in = Counter[int]()
        for sched, latency in zip(self.scheduled_at, self.latencies, strict=True):
            done_in[int(sched + latency)] += 1
        seconds = max(int(self.duration_s), max(done_in, default=0) + 1,
                      max(self.offered_in, default=0) + 1, 1)
        by_second: list[list[float]] = [[] for _ in range(seconds)]
        for sched, latency in zip(self.scheduled_at, self.latencies, strict=True):
            by_second[min(int(sched), seconds - 1)].append(latency)
        rows = []
        for second, values in enumerate(by_second):
            values.sort()
            rows.append({"t": float(second), "offered": float(self.offered_in[second]),
                         "completed": float(done_in[second]),
                         "p50_ms": percentile(values, 50) * 1e3,
                         "p99_ms": percentile(values, 99) * 1e3,
                         "max_ms": (values[-1] if values else 0.0) * 1e3})
        return rows
