"""One validator core's ceiling: `wrk` replaying prepared requests, closed loop.

`wrk` (C) costs a few µs per request: replaying unique, signed requests
(bench/wrk_requests.py) with 64 always in flight it keeps the validator saturated, and
the answers per second and the validator's CPU per answer show its capacity. Latency
under a saturated closed loop is queueing, not a sustainable figure; the ramp's
open-loop steps are the latency figures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, ROOT, Validator, cpu_seconds, pinned

DURATION_S = 10
CONNECTIONS = 64
# Requests prepared per kind: more than DURATION_S at the fastest rate seen here (card
# ~9,900/s in a fast minute), so the replay never wraps around into answers served again
# from the idempotency record (cheaper than a decision: they would flatter the ceiling).
PREPARED = {"card": 200_000, "qr": 80_000}


def run_ceiling(validator: Validator, keys: Path, kind: str, load_cpus: str,
                out: Path) -> dict[str, Any] | None:
    """Saturate the validator with `kind` requests; None when `wrk` is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    requests = out / f"wrk-{kind}.tsv"
    prepared = PREPARED.get(kind, 80_000)
    subprocess.run([PYTHON, "-m", "bench.wrk_requests", "--keys", str(keys), "--kind", kind,
                    "--n", str(prepared), "--out", str(requests)], cwd=ROOT, check=True,
                   capture_output=True)
    pids = validator.pids()
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    result = subprocess.run(pinned(load_cpus, [
        wrk, "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "-s",
        str(ROOT / "bench" / "wrk_replay.lua"), "--latency", validator.terminal_url, "--",
        str(requests),
    ]), capture_output=True, text=True, check=True)
    cpu = cpu_seconds(pids) - cpu_before
    elapsed = time.monotonic() - started
    (out / f"wrk-{kind}.txt").write_text(result.stdout)
    answered = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)  # over wrk's own run
    return {
        "kind": kind,
        "answered_per_s": round(float(rate.group(1)) if rate else answered / elapsed, 1),
        "replayed": max(0, answered - prepared),
        "server_cpu_us_per_validation": round(cpu / answered * 1e6, 1),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "wrk": {q: _ms(result.stdout, q) for q in ("50%", "99%")},
    }


PROBE_S = 3


def run_probe(validator: Validator, load_cpus: str | None, out: Path, label: str,
              seconds: float = PROBE_S) -> dict[str, Any] | None:
    """The host's speed now: `wrk` for PROBE_S on a path the terminal front answers 404
    itself (no application work: the event loop, the parser, two system calls). On this
    VM it moved between 44,000 and 72,000 answers/s within an hour (docs/benchmarks.md,
    sixth session); taken before and after a run, and for a second before each step, it
    says what the host gave them. None when `wrk` is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    pids = validator.pids()
    cpu_before = cpu_seconds(pids)
    result = subprocess.run(pinned(load_cpus, [
        wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", validator.terminal_url + "/host-probe",
    ]), capture_output=True, text=True, check=True)
    cpu = cpu_seconds(pids) - cpu_before
    (out / f"probe-{label}.txt").write_text(result.stdout)
    answered = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    return {"label": label, "answered_per_s": round(float(rate.group(1)) if rate else
                                                     answered / seconds, 1),
            "server_cpu_us": round(cpu / answered * 1e6, 1) if answered else None}


def render_probes(probes: list[dict[str, Any]]) -> str:
    parts = [f"{p['label']} {p['answered_per_s']:,.0f}/s ({p['server_cpu_us']} µs)"
             for p in probes]
    return ("host probe (the terminal front's own 404, wrk " + f"{PROBE_S} s): "
            + ", ".join(parts))


def _ms(text: str, quantile: str) -> float | None:
    match = re.search(rf"\s{re.escape(quantile)}\s+([\d.]+)(us|ms|s)", text)
    if match is None:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def render(results: list[dict[str, Any]]) -> str:
    lines = ["\n== one core's ceiling (wrk, closed loop, 64 connections, "
             f"{DURATION_S} s) ==",
             "kind   answers/s   server µs/validation   non-2xx   wrk p50 / p99 (queueing)"]
    for r in results:
        lines.append(f"{r['kind']:<6} {r['answered_per_s']:>9,.0f}   "
                     f"{r['server_cpu_us_per_validation']:>20,.0f}   {r['non_2xx']:>7}   "
                     f"{r['wrk']['50%']} / {r['wrk']['99%']} ms")
        if r.get("replayed"):
            lines.append(f"       ({r['replayed']:,} answers were retries served from the "
                         "idempotency record: the prepared requests ran out)")
    return "\n".join(lines)
