"""The benchmark's own arithmetic: CPU time from /proc, step verdicts, the summary."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from bench.ceiling import render as render_ceiling
from bench.ceiling import render_probes
from bench.procs import RedisServer, cpu_list, cpu_seconds, process_tree, steal_seconds
from bench.run import _store, parse_options, render_comparison, sm2_vs_es256
from bench.steps import Step, quantile
from bench.summary import render_steps, render_summary, summarise


def step(rate: float, p99: float, *, label: str = "ramp", errors: dict[str, int] | None = None,
         achieved: float | None = None, scenario: str = "bus-qr", steal_s: float = 0.0,
         redis_forks: int | None = None, redis_cpu_s: float | None = None) -> Step:
    return Step(scenario=scenario, rate=rate, offered=rate, achieved=achieved or rate,
                answered=int(rate * 10), latency_ms={"p50": 1.0, "p90": 2.0, "p99": p99,
                                                     "p99.9": p99, "max": p99, "mean": 1.0},
                errors=errors or {}, mismatches=0, decisions={"accept/ok": int(rate * 10)},
                loop_s=10.0, server_cpu_s=rate * 10 * 200e-6, generator_cpu_s=5.0, label=label,
                server_ms={"p50": 0.5, "p99": None}, steal_s=steal_s,
                redis_forks=redis_forks, redis_cpu_s=redis_cpu_s)


def test_cpu_seconds_reads_this_process() -> None:
    before = cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds([os.getpid()]) - before >= 0.03
    assert cpu_seconds([2**22 + 12345]) == 0.0  # a pid that does not exist counts nothing
    assert process_tree(os.getpid())[0] == os.getpid()


def test_steal_is_read_per_cpu_from_proc_stat() -> None:
    lines = [line.split() for line in Path("/proc/stat").read_text().splitlines()]
    per_cpu = {int(f[0][3:]): int(f[8]) for f in lines if f[0][3:].isdigit()}
    ticks = os.sysconf("SC_CLK_TCK")
    first = min(per_cpu)
    assert steal_seconds({first}) >= per_cpu[first] / ticks  # it only ever grows
    assert steal_seconds(set()) == 0.0
    assert steal_seconds({max(per_cpu) + 1}) == 0.0  # a CPU that does not exist
    assert steal_seconds(set(per_cpu)) >= steal_seconds({first})


def test_a_failed_step_says_when_the_host_took_the_validators_time() -> None:
    calm, robbed = step(3000, 40.0), step(3000, 40.0, steal_s=0.4)  # 4 % of 10 s, one core
    assert robbed.steal(1) == 0.04 and calm.steal(1) == 0.0
    for s, noted in ((calm, False), (robbed, True)):
        docs = [{**x.as_dict(1), "verdict": x.verdict(25)} for x in (step(2000, 5.0), s)]
        failure = summarise(docs, 25)["qr"]["first_failure"]
        assert ("the host took 4.0% of the validator's core time" in failure) is noted, failure
    assert " 4.0%      -    -      -  p99 40.0 ms" in render_steps([robbed], 1, 25)


def test_a_failed_step_says_when_the_host_probe_before_it_was_slow() -> None:
    steps = [step(1000, 3.0), step(1500, 4.0), step(2000, 5.0), step(3000, 40.0)]
    for s, probe in zip(steps, (90_000.0, 70_000.0, 70_000.0, 44_000.0), strict=True):
        s.probe_per_s = probe  # median 70,000: one fast outlier does not set the bar
    docs = [{**x.as_dict(1), "verdict": x.verdict(25)} for x in steps]
    failure = summarise(docs, 25)["qr"]["first_failure"]
    assert "the host probe before it answered 44,000/s, 37% below the run's median" in failure
    assert "   44k    -      -  p99 40.0 ms" in render_steps(steps[-1:], 1, 25)
    steps[-1].probe_per_s = 60_000.0  # within 20 % of the median: nothing to say
    docs = [{**x.as_dict(1), "verdict": x.verdict(25)} for x in steps]
    assert "probe" not in summarise(docs, 25)["qr"]["first_failure"]


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
    assert cpu_list("0") == {0} and cpu_list("0-3") == {0, 1, 2, 3}
    assert cpu_list("0,2-3") == {0, 2, 3}


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


def test_the_host_probe_line() -> None:
    probes = [{"label": "before", "answered_per_s": 45749.3, "server_cpu_us": 21.4},
              {"label": "after", "answered_per_s": 71980.0, "server_cpu_us": 13.0}]
    assert render_probes(probes) == ("host probe (the terminal front's own 404, wrk 3 s): "
                                     "before 45,749/s (21.4 µs), after 71,980/s (13.0 µs)")


@pytest.mark.redis
def test_the_benchmarks_redis_counts_its_forks(tmp_path: Path) -> None:
    """An AOF rewrite forks Redis on the load's core: the steps and the ceiling say so."""
    redis = RedisServer(tmp_path / "redis", None)
    redis.start()
    try:
        redis.wait_ready()
        assert redis.forks() == 0
        cpu = redis.cpu_seconds()
        assert cpu is not None and cpu >= 0
        with Redis(port=redis.port) as client:
            client.bgrewriteaof()
        deadline = time.monotonic() + 10
        while redis.forks() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis.forks() == 1
    finally:
        redis.stop()
    assert redis.forks() is None  # gone: not a number


def test_a_step_and_the_ceiling_show_an_aof_rewrite() -> None:
    calm, forked = step(3000, 40.0, redis_forks=0), step(3000, 40.0, redis_forks=1)
    for s, noted in ((calm, False), (forked, True)):
        docs = [{**x.as_dict(1), "verdict": x.verdict(25)} for x in (step(2000, 5.0), s)]
        failure = summarise(docs, 25)["qr"]["first_failure"]
        assert ("Redis forked for an AOF rewrite during it" in failure) is noted, failure
    assert "   1      -  p99 40.0 ms" in render_steps([forked], 1, 25)
    assert "   -      -  p99 40.0 ms" in render_steps([step(3000, 40.0)], 1, 25)  # not read
    ceiling = {"kind": "qr", "answered_per_s": 4000.0, "server_cpu_us_per_validation": 240.0,
               "non_2xx": 0, "wrk": {"50%": 15.0, "99%": 30.0}, "redis_forks": 1}
    assert "Redis forked for an AOF rewrite during it" in render_ceiling([ceiling])
    assert "forked" not in render_ceiling([{**ceiling, "redis_forks": 0}])


def test_redis_cpu_per_validation_and_what_one_redis_core_would_serve() -> None:
    """How far more validator processes scale: Redis's own µs per validation."""
    assert RedisServer(Path("/nonexistent"), None).cpu_seconds() is None  # not started
    busy = step(4000, 9.0, redis_cpu_s=0.5)  # 40,000 answers: 12.5 µs each
    assert busy.redis_us_per_validation == 12.5 and step(1, 1.0).redis_us_per_validation is None
    assert "   -   12.5  ok" in render_steps([busy], 1, 25)
    docs = [{**x.as_dict(1), "verdict": x.verdict(25)} for x in (step(2000, 5.0), busy)]
    summary = summarise(docs, 25)
    assert summary["qr"]["redis_us_at_sustained"] == 12.5
    rendered = render_summary(summary, {"load_average": [0]}, {"load_average": [0]})
    assert "Redis: 12.5 µs of its CPU per validation there: one Redis core serves at " \
           "least ~80,000 validations/s" in rendered
    ceiling = {"kind": "card", "answered_per_s": 7000.0, "server_cpu_us_per_validation": 140.0,
               "redis_cpu_us_per_validation": 11.3, "non_2xx": 0,
               "wrk": {"50%": 9.0, "99%": 20.0}}
    assert "140       11.3" in render_ceiling([ceiling])


def _cost(rate: float, cpu_us: float, scenario: str, p99: float = 5.0) -> dict[str, Any]:
    done = step(rate, p99, scenario=scenario)
    done.server_cpu_s = done.answered * cpu_us * 1e-6
    return {**done.as_dict(1), "verdict": done.verdict(25)}


def test_an_sm2_qr_is_compared_with_an_es256_qr_at_a_rate_both_sustained() -> None:
    steps = [_cost(500, 300, "bus-qr"), _cost(1000, 250, "bus-qr"), _cost(2000, 200, "bus-qr"),
             _cost(500, 700, "bus-qr-sm2"), _cost(1000, 450, "bus-qr-sm2"),
             _cost(2000, 900, "bus-qr-sm2", p99=80.0),  # not sustained: not compared
             _cost(300, 100, "bus-taps")]
    comparison = sm2_vs_es256(steps)
    assert comparison is not None
    assert (comparison["rate"], comparison["es256_cpu_us"], comparison["sm2_cpu_us"]) == \
        (1000, 250.0, 450.0)
    assert comparison["ratio"] == 1.8 and comparison["met"]
    assert "at 1000/s: ES256/EdDSA 250 µs, all-SM2 450 µs = 1.80× (target ≤ 2×: met)" in \
        render_comparison(comparison)
    assert sm2_vs_es256([s for s in steps if s["scenario"] != "bus-qr-sm2"]) is None
    worse = sm2_vs_es256([_cost(500, 100, "bus-qr"), _cost(500, 250, "bus-qr-sm2")])
    assert worse is not None and not worse["met"] and "NOT met" in render_comparison(worse)


def _ceiling(kind: str, per_s: float, cpu_us: float, non_2xx: int = 0) -> dict[str, Any]:
    return {"kind": kind, "answered_per_s": per_s, "server_cpu_us_per_validation": cpu_us,
            "non_2xx": non_2xx}


def test_an_sm2_qr_is_compared_with_an_all_es256_qr_at_one_cores_ceiling_first() -> None:
    steps = [_cost(1000, 250, "bus-qr"), _cost(1000, 450, "bus-qr-sm2")]
    ceilings = [_ceiling("card", 7000, 140), _ceiling("qr", 3200, 310),
                _ceiling("qr-sm2", 1500, 660)]
    c = sm2_vs_es256(steps, ceilings)
    assert c is not None and c["basis"] == "ceiling"
    assert (c["es256_cpu_us"], c["sm2_cpu_us"], c["ratio"], c["met"]) == (310, 660, 2.13, False)
    assert ("at one core's ceiling (ES256 3,200/s, all-SM2 1,500/s): all-ES256 310 µs, "
            "all-SM2 660 µs = 2.13× (target ≤ 2×: NOT met)") in render_comparison(c)
    # a ceiling with errors compares nothing: the ramps' figures stand in
    spoiled = [*ceilings[:2], _ceiling("qr-sm2", 9000, 50, non_2xx=80_000)]
    fallback = sm2_vs_es256(steps, spoiled)
    assert fallback is not None and fallback["basis"] == "ramp" and fallback["ratio"] == 1.8


def test_make_bench_ramps_the_sm2_qr_and_refuses_an_unknown_kind(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BENCH_KINDS", raising=False)
    assert parse_options([]).kinds == "card,qr,qr-sm2"
    with pytest.raises(SystemExit):
        parse_options(["--kinds", "card,qr-sm3"])
    assert "kinds qr-sm3" in capsys.readouterr().err


def test_the_no_loss_redis_of_make_bench_fsyncs_every_write(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCH_STORE", "redis-fsync")
    assert parse_options([]).store == "redis-fsync"
    server = _store("redis-fsync", tmp_path, None)
    assert isinstance(server, RedisServer)
    server.start()
    try:
        server.wait_ready()
        client = Redis(port=server.port, socket_timeout=2, decode_responses=True)
        try:
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            assert client.config_get("appendonly") == {"appendonly": "yes"}
        finally:
            client.close()
    finally:
        server.stop()
