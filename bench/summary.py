"""The benchmark's tables and its verdict against the performance targets."""

from __future__ import annotations

import statistics
from typing import Any

from bench.steps import Step

# The performance targets: one validator process on one core of the 2-core machine
TARGETS = {
    "qr_rate": 4000.0,  # QR validations/s sustained with p99 <= 25 ms
    "card_rate": 6000.0,  # card taps/s sustained
    "p50_ms_at_1000": 1.0,
    "cpu_us": 250.0,  # server CPU per validation
}

STEAL_NOTABLE = 0.01  # from 1 % of its time taken by the host, a step's tail is suspect

_HEAD = (f"{'step':8} {'rate/s':>7} {'achieved':>8} {'p50':>7} {'p90':>7} {'p99':>7} "
         f"{'p99.9':>7} {'max':>7} {'srv p50':>7} {'srv p99':>7} {'srv busy':>8} {'µs/val':>7} "
         f"{'gen busy':>8} {'steal':>6} {'probe':>6} {'fork':>4} {'rds µs':>6}  verdict")
SLOW_PROBE = 0.8  # a step whose host probe is under 80 % of the run's median: a slow host


def _ms(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7}"


def render_steps(steps: list[Step], server_cores: int, p99_ms: float, *, header: bool = True
                 ) -> str:
    """Latencies in ms: from the scheduled time (the generator's view), and "srv", the
    validator's own decision time; busy = share of the cores used; steal = share of the
    validator's cores' time the hypervisor gave to someone else; fork = Redis forks
    (AOF rewrites) during the step; rds µs = Redis's own CPU per validation."""
    lines = [_HEAD, "-" * len(_HEAD)] if header else []
    for s in steps:
        lat = s.latency_ms
        lines.append(
            f"{s.label:8} {s.rate:7.0f} {s.achieved:8.0f} {lat['p50']:7.2f} {lat['p90']:7.2f} "
            f"{lat['p99']:7.2f} {lat['p99.9']:7.2f} {lat['max']:7.1f} "
            f"{_ms(s.server_ms.get('p50'))} {_ms(s.server_ms.get('p99'))} "
            f"{s.server_busy(server_cores):8.0%} {s.cpu_us_per_validation:7.0f} "
            f"{s.generator_busy:8.0%} {s.steal(server_cores):6.1%} {_kilo(s.probe_per_s)} "
            f"{'-' if s.redis_forks is None else s.redis_forks:>4} "
            f"{_us(s.redis_us_per_validation)}  {s.verdict(p99_ms)}")
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return f"{value:6.1f}" if value is not None else f"{'-':>6}"


def _kilo(per_s: float | None) -> str:
    return f"{per_s / 1000:5.0f}k" if per_s is not None else f"{'-':>6}"


def _failure(step: dict[str, Any], usual_probe: float | None = None) -> str:
    """Why the ramp ended, which side was saturated then, and whether the host was slow."""
    server, generator = step["server_busy"], step["generator_busy"]
    # An asyncio process is effectively saturated at ~80 %: the rest is its idle polling.
    bound = ("the validator's core was saturated" if server >= 0.8 and server >= generator else
             "the load generator's core was saturated" if generator >= 0.8 else
             "neither core saturated on average: bursts (cold caches at the start of a "
             "step, other load on the machine)")
    stolen = step.get("steal", 0.0)
    if stolen >= STEAL_NOTABLE:
        bound += f"; the host took {stolen:.1%} of the validator's core time"
    if step.get("redis_forks"):
        bound += "; Redis forked for an AOF rewrite during it, on the load's core"
    probe = step.get("probe_per_s")
    if probe and usual_probe and probe < SLOW_PROBE * usual_probe:
        bound += (f"; the host probe before it answered {probe:,.0f}/s, "
                  f"{1 - probe / usual_probe:.0%} below the run's median")
    return (f"{step['rate']:.0f}/s: {step['verdict']} (validator {server:.0%} busy, "
            f"generator {generator:.0%}: {bound})")


def _kind_summary(steps: list[dict[str, Any]], usual_probe: float | None = None
                  ) -> dict[str, Any]:
    ramp = [s for s in steps if s["label"] in ("ramp", "retry")]
    ok = [s for s in ramp if s["verdict"] == "ok"]
    best = max(ok, key=lambda s: s["rate"], default=None)
    at_1000 = [s for s in ramp if s["rate"] == 1000 and s["verdict"] == "ok"]
    by_label = {s["label"]: s for s in steps}
    # what ended the ramp: a failure above the best rate (a passed retry is no failure)
    failed = [s for s in ramp if s["verdict"] != "ok" and s["rate"] > (best or {"rate": 0})["rate"]]
    return {
        "sustained_rate": best["rate"] if best else 0.0,
        "cpu_us_at_sustained": best["cpu_us_per_validation"] if best else None,
        "server_busy_at_sustained": best["server_busy"] if best else None,
        "p99_ms_at_sustained": best["latency_ms"]["p99"] if best else None,
        "redis_us_at_sustained": best.get("redis_us_per_validation") if best else None,
        "first_failure": _failure(failed[-1], usual_probe) if failed else None,
        "p50_ms_at_1000": at_1000[0]["latency_ms"]["p50"] if at_1000 else None,
        "server_p50_ms_at_1000": at_1000[0]["server_ms"].get("p50") if at_1000 else None,
        # the same without the generator's timer lag (lean generator only)
        "p50_ms_at_1000_from_send": at_1000[0].get("service_ms", {}).get("p50")
        if at_1000 else None,
        "cpu_us_at_1000": at_1000[0]["cpu_us_per_validation"] if at_1000 else None,
        **{f"at_{label[:2]}pct": {"rate": s["rate"], "latency_ms": s["latency_ms"]}
           for label, s in by_label.items() if label in ("50 %", "80 %")},
    }


def summarise(steps: list[dict[str, Any]], p99_ms: float, *, card_mode: str = "fresh"
              ) -> dict[str, Any]:
    """`card_mode`: the card taps' (bench/creds.py), kept with the card figures."""
    kinds = {"card": "bus-taps", "qr": "bus-qr"}
    summary: dict[str, Any] = {"p99_limit_ms": p99_ms}
    probes = [s["probe_per_s"] for s in steps if s.get("probe_per_s")]
    usual_probe = statistics.median(probes) if probes else None  # the host, most of the run
    for kind, scenario in kinds.items():
        mine = [s for s in steps if s["scenario"] == scenario]
        if mine:
            summary[kind] = _kind_summary(mine, usual_probe)
    if "card" in summary:
        summary["card"]["card_mode"] = card_mode
    checks = []
    if "qr" in summary:
        qr = summary["qr"]
        checks.append(("QR ≥ 4000/s, p99 ≤ 25 ms", f"{qr['sustained_rate']:.0f}/s",
                       qr["sustained_rate"] >= TARGETS["qr_rate"]))
        cpu = qr["cpu_us_at_sustained"]
        checks.append(("QR server CPU ≤ 250 µs", f"{cpu:.0f} µs" if cpu else "-",
                       cpu is not None and cpu <= TARGETS["cpu_us"]))
    if "card" in summary:
        card = summary["card"]
        checks.append(("card ≥ 6000/s", f"{card['sustained_rate']:.0f}/s",
                       card["sustained_rate"] >= TARGETS["card_rate"]))
    for kind in ("qr", "card"):
        p50 = summary.get(kind, {}).get("p50_ms_at_1000")
        sent = summary.get(kind, {}).get("p50_ms_at_1000_from_send")
        if kind in summary:
            measured = f"{p50:.2f} ms" if p50 else "-"
            if sent is not None:
                measured += f" ({sent:.2f} ms from the send)"
            checks.append((f"{kind} p50 ≤ 1 ms at 1000/s", measured,
                           p50 is not None and p50 <= TARGETS["p50_ms_at_1000"]))
    summary["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]
    return summary


def render_summary(summary: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
                   ) -> str:
    lines = ["== summary (latency in ms from the scheduled time) =="]
    for kind in ("card", "qr"):
        s = summary.get(kind)
        if s is None:
            continue
        mode = f" ({s['card_mode']} cards)" if "card_mode" in s else ""
        lines.append(f"{kind}{mode}: highest sustained {s['sustained_rate']:.0f}/s "
                     f"(p99 {s['p99_ms_at_sustained']} ms, validator CPU "
                     f"{s['cpu_us_at_sustained']} µs/validation, "
                     f"{(s['server_busy_at_sustained'] or 0):.0%} of its core)")
        redis_us = s.get("redis_us_at_sustained")
        if redis_us:
            lines.append(f"  Redis: {redis_us} µs of its CPU per validation there: one "
                         f"Redis core serves at least ~{1e6 / redis_us:,.0f} validations/s "
                         "(here it shares its core with the load; docs/benchmarks.md, how "
                         "far more validator processes scale)")
        for key in ("at_50pct", "at_80pct"):
            if key in s:
                lat = s[key]["latency_ms"]
                lines.append(f"  at {key[3:5]} % ({s[key]['rate']:.0f}/s): p50 {lat['p50']:.2f} "
                             f"p90 {lat['p90']:.2f} p99 {lat['p99']:.2f} max {lat['max']:.1f}")
        lines.append(f"  ramp ended at {s['first_failure']}" if s["first_failure"] else
                     "  no step failed: the list of rates ran out (add higher ones)")
    lines.append("performance targets (one process, one core):")
    lines += [f"  {'met ' if t['met'] else 'MISS'} {t['target']:30} {t['measured']}"
              for t in summary["targets"]]
    lines.append(f"load average before {before['load_average']}, after {after['load_average']}")
    return "\n".join(lines)
