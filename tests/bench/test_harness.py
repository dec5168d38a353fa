"""The benchmark's own arithmetic: CPU time from /proc, step verdicts, the summary."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.procs import cpu_seconds, process_tree
from bench.run import _cores
from bench.steps import Step, quantile
from bench.summary import render_steps, summarise


def step(rate: float, p99: float, *, label: str = "ramp", errors: dict[str, int] | None = None,
         achieved: float | None = None, scenario: str = "bus-qr") -> Step:
    return Step(scenario=scenario, rate=rate, offered=rate, achieved=achieved or rate,
                answered=int(rate * 10), latency_ms={"p50": 1.0, "p90": 2.0, "p99": p99,
                                                     "p99.9": p99, "max": p99, "mean": 1.0},
                errors=errors or {}, mismatches=0, decisions={"accept/ok": int(rate * 10)},
                loop_s=10.0, server_cpu_s=rate * 10 * 200e-6, generator_cpu_s=5.0, label=label,
                server_ms={"p50": 0.5, "p99": None})


def test_cpu_seconds_reads_this_process() -> None:
    before = cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds([os.getpid()]) - before >= 0.03
    assert cpu_seconds([2**22 + 12345]) == 0.0  # a pid that does not exist counts nothing
    assert process_tree(os.getpid())[0] == os.getpid()


def test_histogram_quantiles() -> None:
    before = {0.001: 10.0, 0.002: 10.0, 0.005: 10.0, float("inf"): 10.0}
    after = {0.001: 60.0, 0.002: 100.0, 0.005: 110.0, float("inf"): 110.0}
    assert quantile(0.5, before, after) == 1.0  # 50 of 100 new ones are under 1 ms
    assert quantile(0.7, before, after) == 1.5  # halfway through the 1–2 ms bucket
    assert quantile(0.5, after, after) is None  # nothing new


def test_verdicts() -> None:
    assert step(1000, 3.0).verdict(25) == "ok"
    assert step(1000, 30.0).verdict(25) == "p99 30.0 ms > 25 ms"
    assert step(1000, 3.0, errors={"timeout": 2}).verdict(25) == "errors: timeout 2"
    assert step(1000, 3.0, achieved=900).verdict(25).startswith("achieved 900/s")
    assert step(1000, 3.0).cpu_us_per_validation == 200.0
    assert step(1000, 3.0).server_busy(1) == 0.2
    assert _cores("0") == 1 and _cores("0-3") == 4 and _cores("0,2-3") == 3


def test_summary_takes_the_highest_sustained_rate_and_checks_the_targets() -> None:
    steps = [step(300, 2.0, label="warm-up"), step(2000, 5.0), step(4000, 9.0),
             step(5000, 40.0), step(5000, 41.0, label="retry"),
             step(2000, 3.0, label="50 %"), step(3200, 4.0, label="80 %")]
    docs: list[dict[str, Any]] = [{**s.as_dict(1), "verdict": s.verdict(25)} for s in steps]
    summary = summarise(docs, 25)
    qr = summary["qr"]
    assert qr["sustained_rate"] == 4000
    assert qr["cpu_us_at_sustained"] == 200.0
    assert qr["at_80pct"]["rate"] == 3200
    assert qr["first_failure"].startswith("5000/s: p99 41.0 ms")
    met = {t["target"]: t["met"] for t in summary["targets"]}
    assert met == {"QR ≥ 4000/s, p99 ≤ 25 ms": True, "QR server CPU ≤ 250 µs": True,
                   "qr p50 ≤ 1 ms at 1000/s": False}  # no 1000/s step was run
    assert "p99 41.0 ms > 25 ms" in render_steps(steps, 1, 25)
    passed_on_retry = [step(1000, 30.0), step(1000, 5.0, label="retry")]
    again = summarise([{**s.as_dict(1), "verdict": s.verdict(25)} for s in passed_on_retry], 25)
    assert again["qr"]["sustained_rate"] == 1000 and again["qr"]["first_failure"] is None
