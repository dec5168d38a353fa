"""One load step: an open-loop generator at a fixed rate, and what it cost.

Two generators write the same report.json: "lean" (bench/openloop.py: pre-built
requests on raw keep-alive connections, 30–45 µs of CPU per request at 4,000/s and
more) and "sim" (the simulator's runner, `python -m terminals_sim load`: a population
and an oracle, ~400 µs per request, so it cannot offer more than ~2,000/s from one
core). Both build
their requests first, print a "set-up …" line, then run the open loop and print their
report, whose first line starts with "offered". The validator's CPU time is read at
those two lines, so set-up and report writing are not counted: CPU per validation is
the validator's utime + stime over the loop (drain included) divided by the answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.creds import CardMode
from bench.procs import (
    PYTHON,
    ROOT,
    StoreServer,
    Validator,
    cpu_seconds,
    pinned,
    steal_seconds,
)


@dataclass
class StepOptions:
    keys: Path
    config: Path
    duration_s: float = 10.0
    terminals: int = 16
    connections: int = 64
    load_cpus: str | None = None
    # the CPUs the validator may use: its utilisation is per core, its steal read on them
    server_cpus: tuple[int, ...] = (0,)
    generator: str = "lean"  # or "sim"
    # card taps of the lean generator: new cards' first taps, or returning cards
    card_mode: CardMode = "fresh"


@dataclass
class Step:
    scenario: str
    rate: float
    offered: float
    achieved: float
    answered: int
    latency_ms: dict[str, float]
    errors: dict[str, int]
    mismatches: int
    decisions: dict[str, int]
    loop_s: float
    server_cpu_s: float
    generator_cpu_s: float
    label: str = ""  # "ramp", "warm-up", "50 %", "80 %"
    # the validator's own view (its decision_seconds histogram over the step): the time
    # from the handler's start to its answer, without the generator's or the socket's share
    server_ms: dict[str, float | None] = field(default_factory=dict)
    # how late requests left the generator (lean generator only): part of the latency
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    # from each request's send to its answer (lean generator only): without that lag
    service_ms: dict[str, float] = field(default_factory=dict)
    # time the hypervisor gave the validator's cores to someone else during the loop
    steal_s: float = 0.0
    # the host probe just before the step (bench/ceiling.py, `run_probe`): answers/s of
    # the front's own 404; the host's speed then, which `steal` mostly does not show
    probe_per_s: float | None = None
    # Redis forks during the loop (`total_forks`): AOF rewrites, a child copying the data
    # set on the load's core; None when not read (no Redis handle given)
    redis_forks: int | None = None
    # Redis's own CPU over the loop (None: not read): how many validators one Redis
    # core could serve
    redis_cpu_s: float | None = None

    @property
    def cpu_us_per_validation(self) -> float:
        return self.server_cpu_s / max(self.answered, 1) * 1e6

    @property
    def redis_us_per_validation(self) -> float | None:
        if self.redis_cpu_s is None:
            return None
        return self.redis_cpu_s / max(self.answered, 1) * 1e6

    def server_busy(self, cores: int) -> float:
        """Share of its cores the validator was busy during the loop (0–1)."""
        return self.server_cpu_s / max(self.loop_s, 1e-9) / cores

    @property
    def generator_busy(self) -> float:
        return self.generator_cpu_s / max(self.loop_s, 1e-9)

    def steal(self, cores: int) -> float:
        """Share of its cores' time the host took from the validator during the loop."""
        return self.steal_s / max(self.loop_s, 1e-9) / cores

    def verdict(self, p99_limit_ms: float) -> str:
        """"ok", or why this step is not sustained."""
        if self.errors:
            return "errors: " + ", ".join(f"{k} {v}" for k, v in self.errors.items())
        if self.mismatches:
            return f"{self.mismatches} mismatches"
        if self.latency_ms["p99"] > p99_limit_ms:
            return f"p99 {self.latency_ms['p99']:.1f} ms > {p99_limit_ms:g} ms"
        if self.achieved < 0.97 * self.offered:
            return f"achieved {self.achieved:.0f}/s < offered {self.offered:.0f}/s"
        return "ok"

    def as_dict(self, server_cores: int) -> dict[str, Any]:
        doc = asdict(self)
        doc["cpu_us_per_validation"] = round(self.cpu_us_per_validation, 1)
        redis_us = self.redis_us_per_validation
        doc["redis_us_per_validation"] = round(redis_us, 1) if redis_us is not None else None
        doc["server_busy"] = round(self.server_busy(server_cores), 3)
        doc["generator_busy"] = round(self.generator_busy, 3)
        doc["steal"] = round(self.steal(server_cores), 3)
        doc["generator_us_per_request"] = round(
            self.generator_cpu_s / max(self.answered, 1) * 1e6, 1)
        return doc


# the lean generator's kind per scenario; "bus-qr-sm2" is all-SM2 QR codes (§2.1)
KINDS = {"bus-taps": "card", "bus-qr": "qr", "bus-qr-sm2": "qr-sm2"}
_BUCKET = re.compile(r'^validator_decision_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def decision_buckets(url: str) -> dict[float, float]:
    """Cumulative counts of the validator's decision_seconds histogram, by upper bound."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {float(le): float(count) for le, count in _BUCKET.findall(text)}


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """The q-quantile (ms) of what the histogram gained, interpolated within its bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank, lower, below = q * counts[-1], 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower * 1e3  # beyond the last finite bucket: its bound, at least
            share = (rank - below) / max(count - below, 1e-9)
            return (lower + (bound - lower) * share) * 1e3
        lower, below = bound, count
    return None


def generator_argv(validator: Validator, opts: StepOptions, scenario: str, rate: float, *,
                   seed: int, out_dir: Path) -> list[str]:
    """The command line of one step's generator: validations go to the terminal front."""
    url = validator.terminal_url
    if opts.generator == "sim" and opts.card_mode != "fresh":
        raise ValueError("returning cards are the lean generator's: the simulator's "
                         "runner taps its own population's cards")
    if opts.generator == "sim":
        # the simulator's runner has no SM2 scenario: bus QR scans, every e-card SM2
        sm2 = ["--sm2-share", "1"] if scenario == "bus-qr-sm2" else []
        return pinned(opts.load_cpus, [
            PYTHON, "-m", "terminals_sim", "load", "--url", validator.url,
            "--terminal-url", url, "--keys", str(opts.keys),
            "--config", str(opts.config), "--rate", f"{rate:g}",
            "--duration", f"{opts.duration_s:g}", "--terminals", str(opts.terminals),
            "--connections", str(opts.connections),
            "--scenario", "bus-qr" if sm2 else scenario,
            "--seed", str(seed), "--out", str(out_dir), "--quiet", "--drain", "5", *sm2,
        ])
    if opts.generator != "lean":
        raise ValueError(f"unknown generator {opts.generator!r}: lean or sim")
    kind = KINDS[scenario]
    # Not under taskset: it builds its requests on every core (the validator is idle
    # then), and pins itself to `load_cpus` before its clock starts. The e-card holders
    # are kept for the next steps, so the validator's level-1 cache stays warm.
    argv = [PYTHON, "-m", "bench.openloop", "--url", url, "--keys", str(opts.keys),
            "--kind", kind, "--rate", f"{rate:g}", "--duration", f"{opts.duration_s:g}",
            "--terminals", str(opts.terminals), "--connections", str(opts.connections),
            "--drain", "5", "--out", str(out_dir),
            "--holders-file", str(out_dir.parent / f"ecard-holders-{kind}.json")]
    if kind == "card":
        argv += ["--card-mode", opts.card_mode]
    return argv + (["--cpus", opts.load_cpus] if opts.load_cpus else [])


def run_step(validator: Validator, opts: StepOptions, scenario: str, rate: float, *,
             seed: int, out_dir: Path, label: str = "ramp",
             redis: StoreServer | None = None) -> Step:
    """Run one step and measure it; raises RuntimeError if the runner could not start.
    With `redis`, also its CPU and forks over the loop."""
    argv = generator_argv(validator, opts, scenario, rate, seed=seed, out_dir=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # line -> (wall, server CPU, generator CPU, steal on the server's cores)
    marks: dict[str, tuple[float, float, float, float]] = {}
    histograms: dict[str, dict[float, float]] = {}
    forked: dict[str, int | None] = {}
    redis_cpu: dict[str, float | None] = {}
    with (out_dir / "runner.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            mark = "start" if line.startswith("set-up") else \
                "end" if line.startswith("offered") else None
            if mark is not None:
                marks[mark] = (time.monotonic(), cpu_seconds(validator.pids()),
                               cpu_seconds([proc.pid]), steal_seconds(opts.server_cpus))
                histograms[mark] = decision_buckets(validator.url)
                forked[mark] = redis.forks() if redis is not None else None
                redis_cpu[mark] = redis.cpu_seconds() if redis is not None else None
        code = proc.wait()
    report_path = out_dir / "report.json"
    if code not in (0, 1) or "start" not in marks or "end" not in marks or \
            not report_path.exists():
        raise RuntimeError(f"the {opts.generator} generator failed (exit {code}); "
                           f"see {out_dir}/runner.log")
    report = json.loads(report_path.read_text())
    (t0, s0, g0, h0), (t1, s1, g1, h1) = marks["start"], marks["end"]
    f0, f1 = forked["start"], forked["end"]
    r0, r1 = redis_cpu["start"], redis_cpu["end"]
    return Step(
        scenario=scenario, rate=rate, offered=report["offered_rate"],
        achieved=report["achieved_rate"], answered=report["answered"],
        latency_ms={k: round(v, 3) for k, v in report["latency_ms"].items()},
        errors=report["errors"], mismatches=report["mismatches"],
        decisions=report["decisions"], loop_s=t1 - t0, server_cpu_s=s1 - s0,
        generator_cpu_s=g1 - g0, label=label,
        server_ms={f"p{q * 100:g}": quantile(q, histograms["start"], histograms["end"])
                   for q in (0.5, 0.99)},
        send_lag_ms=report.get("send_lag_ms", {}),
        service_ms=report.get("service_ms", {}),
        steal_s=h1 - h0,
        redis_forks=f1 - f0 if f0 is not None and f1 is not None else None,
        redis_cpu_s=r1 - r0 if r0 is not None and r1 is not None else None,
    )
