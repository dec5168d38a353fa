"""One validator core's ceiling: `wrk` replaying prepared requests, closed loop.

`wrk` (C) costs a few µs per request: replaying unique, signed requests
(bench/wrk_requests.py) with 64 always in flight it keeps the validator saturated, and
the answers per second and the validator's CPU per answer show its capacity. Latency
under a saturated closed loop is queueing, not a sustainable figure; the ramp's
open-loop steps are the latency figures.

QR scans come from `HOLDERS` e-cards in turn. Their first scans (the level-1 credential
verified once, then cached) are sent before `wrk` starts, one at a time, and `wrk`
replays the rest: every kind is measured with its cache warm, as for passengers seen
before. Left in the measured run, those first scans would weigh on each kind in
proportion to how few answers it manages in the run: an all-SM2 QR, at under half an
ES256 QR's rate, would carry twice the share of SM2 issuer signatures.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, NamedTuple

from bench.creds import CARDS, CardMode
from bench.procs import PYTHON, ROOT, StoreServer, Validator, cpu_seconds, pinned

WRK = "wrk"
DURATION_S = 10
CONNECTIONS = 64
# Requests prepared per kind: more than DURATION_S at the fastest rate seen here (card
# ~9,900/s in a fast minute), so the replay never wraps around into answers served again
# from the idempotency record (cheaper than a decision: they would flatter the ceiling).
# Returning cards (`card_mode`) save ~10 µs of a tap's 112-290 µs: ~11,000/s at that
# best, 110,000 in 10 s, still under 200,000. A wrap-around would resend request 1 with
# its request_id, so its idempotency record answers before any counter is compared: a
# retry as with fresh cards, never a `replayed` denial; `replayed` below counts them.
# An all-SM2 QR (`qr-sm2`) runs at under half an ES256 QR's rate (~1,300/s here), and
# takes the simulator's SM2 signer ~1 ms to make: 20,000 are more than 10 s of them,
# and made in ~20 s, well inside the 60 s a QR stays fresh.
PREPARED = {"card": 200_000, "qr": 80_000, "qr-sm2": 20_000}
HOLDERS = 2000  # e-cards behind the QR scans: their first scans warm the level-1 cache


def run_ceiling(validator: Validator, keys: Path, kind: str, load_cpus: str,
                out: Path, card_mode: CardMode = "fresh",
                redis: StoreServer | None = None) -> dict[str, Any] | None:
    """Saturate the validator with `kind` requests; None when `wrk` is not installed.
    With `redis`, also its CPU per answer and its forks (an AOF rewrite) meanwhile."""
    if shutil.which(WRK) is None:
        return None
    requests = out / f"wrk-{kind}.tsv"
    prepared = PREPARED.get(kind, 80_000)
    cards = ["--card-mode", card_mode] if kind == "card" else ["--holders", str(HOLDERS)]
    subprocess.run([PYTHON, "-m", "bench.wrk_requests", "--keys", str(keys), "--kind", kind,
                    "--n", str(prepared), *cards, "--out", str(requests)], cwd=ROOT,
                   check=True, capture_output=True)
    warm = 0 if kind == "card" else warm_up(validator.terminal_url, requests, HOLDERS)
    prepared -= warm
    forks_before = redis.forks() if redis is not None else None
    redis_before = redis.cpu_seconds() if redis is not None else None
    run = _wrk(validator, load_cpus, DURATION_S, [
        "-s", str(ROOT / "bench" / "wrk_replay.lua"), "--latency", validator.terminal_url,
        "--", str(requests), str(warm)])
    (out / f"wrk-{kind}.txt").write_text(run.stdout)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", run.stdout)
    forks_after = redis.forks() if redis is not None else None
    redis_after = redis.cpu_seconds() if redis is not None else None
    return {
        "kind": kind,
        **({"card_mode": card_mode} if kind == "card" else {}),
        "answered_per_s": run.per_s,
        "replayed": max(0, run.answered - prepared),
        "server_cpu_us_per_validation": run.cpu_us,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "wrk": {q: _ms(run.stdout, q) for q in ("50%", "99%")},
        "redis_forks": forks_after - forks_before
        if forks_before is not None and forks_after is not None else None,
        "redis_cpu_us_per_validation": round((redis_after - redis_before) / run.answered * 1e6, 1)
        if redis_before is not None and redis_after is not None and run.answered else None,
    }


def warm_up(url: str, requests: Path, n: int) -> int:
    """Send the first `n` requests of a wrk file one at a time; how many were sent."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    sent = 0
    try:
        with requests.open() as lines:
            for line in lines:
                if sent == n:
                    break
                terminal, timestamp, signature, body = line.rstrip("\n").split("\t", 3)
                conn.request("POST", "/v1/validations", body=body.encode(), headers={
                    "X-Terminal-Id": terminal, "X-Timestamp": timestamp,
                    "X-Signature": signature, "Content-Type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"warm-up request {sent + 1}: HTTP {answer.status}")
                sent += 1
    finally:
        conn.close()
    return sent


class _WrkRun(NamedTuple):
    stdout: str
    answered: int
    per_s: float  # wrk's own Requests/sec: over its run, not its Lua set-up
    cpu_us: float | None  # the validator's CPU per answer


def _wrk(validator: Validator, load_cpus: str | None, seconds: float,
         args: list[str]) -> _WrkRun:
    """One `wrk` run (64 connections, one thread) against the validator, and its CPU."""
    pids = validator.pids()
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    result = subprocess.run(pinned(load_cpus, [
        WRK, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", *args,
    ]), capture_output=True, text=True, check=True)
    cpu = cpu_seconds(pids) - cpu_before
    elapsed = time.monotonic() - started
    answered = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    return _WrkRun(result.stdout, answered,
                   round(float(rate.group(1)) if rate else answered / elapsed, 1),
                   round(cpu / answered * 1e6, 1) if answered else None)


PROBE_S = 3


def run_probe(validator: Validator, load_cpus: str | None, out: Path, label: str,
              seconds: float = PROBE_S) -> dict[str, Any] | None:
    """The host's speed now: `wrk` for PROBE_S on a path the terminal front answers 404
    itself (no application work: the event loop, the parser, two system calls). On this
    VM it moved between 44,000 and 72,000 answers/s within an hour (docs/benchmarks.md,
    "The host's speed"); taken before and after a run, and for a second before each step, it
    says what the host gave them. None when `wrk` is not installed."""
    if shutil.which(WRK) is None:
        return None
    run = _wrk(validator, load_cpus, seconds, [validator.terminal_url + "/host-probe"])
    (out / f"probe-{label}.txt").write_text(run.stdout)
    return {"label": label, "answered_per_s": run.per_s, "server_cpu_us": run.cpu_us}


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
             "kind   answers/s   server µs/validation   Redis µs   non-2xx   "
             "wrk p50 / p99 (queueing)"]
    for r in results:
        redis_us = r.get("redis_cpu_us_per_validation")
        lines.append(f"{r['kind']:<6} {r['answered_per_s']:>9,.0f}   "
                     f"{r['server_cpu_us_per_validation']:>20,.0f}   "
                     f"{'-' if redis_us is None else f'{redis_us:.1f}':>8}   "
                     f"{r['non_2xx']:>7}   {r['wrk']['50%']} / {r['wrk']['99%']} ms")
        if r.get("card_mode") == "returning":
            lines.append(f"       (returning cards: {CARDS:,} cards tapping in turn, "
                         "counters rising)")
        if r.get("redis_forks"):
            lines.append("       (Redis forked for an AOF rewrite during it, on the load's "
                         "core)")
        if r.get("replayed"):
            lines.append(f"       ({r['replayed']:,} answers were retries served from the "
                         "idempotency record: the prepared requests ran out)")
    return "\n".join(lines)
