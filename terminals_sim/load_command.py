"""`python -m terminals_sim load`: check the options, set up, run the open loop, report.

Options are checked before anything is set up or sent (`LoadOptions.problems`). The
verdict (`report.verdict`) fails a run with no answer at all, any failed request, any
answer not as expected, or a p99 over `p99_budget_ms` — 400 ms by default, the
terminal-side budget of a whole transaction (mission.md); a tighter figure, such as our
share of a few ms, is given on the command line.

Set-up happens before the clock starts: the population is drawn, its registry and block
list are loaded (when a token or a store URL allows), and the QR codes the run will need
are pre-built (`qrpool.py`). Then `OpenLoop` drives `Traffic` at the fixed rate, a
progress line is printed each second, and the report is printed and written to
`--out` as report.json and report.html.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from terminals_sim.cityconf import load_city_config
from terminals_sim.keyset import load_sim_keys
from terminals_sim.netguard import require_loopback
from terminals_sim.open_loop import OpenLoop
from terminals_sim.oracle import Oracle
from terminals_sim.population import Population
from terminals_sim.qrpool import QrPool, estimate_build_s
from terminals_sim.registration import register
from terminals_sim.report import build_report, render_text, write_report
from terminals_sim.stats import RunStats
from terminals_sim.terminals import Fleet
from terminals_sim.traffic import MODES, Traffic

__all__ = ["LoadOptions", "run_load"]


@dataclass(frozen=True)
class LoadOptions:
    url: str
    keys_dir: Path
    config_dir: Path = Path("config")
    rate: float = 100.0
    duration_s: float = 10.0
    terminals: int = 8
    scenario: str = "bus-taps"
    out_dir: Path | None = None
    connections: int = 64
    population: int | None = None  # default: enough idle holders for 3 s of latency
    seed: int | None = None
    admin_token: str | None = None
    store_url: str | None = None
    drain_s: float = 10.0
    timeout_s: float = 2.0
    fault_share: float = 0.0
    progress: bool = True
    terminal_url: str | None = None  # POST /v1/validations goes here; None: `url`
    p99_budget_ms: float = 400.0  # the terminal-side budget of a whole transaction
    sm2_share: float = 0.0  # e-card holders whose e-card is SM2 on both levels (§2.1)

    def problems(self) -> list[str]:
        """What is wrong with these options, before anything is set up or sent."""
        found = []
        for name, value in (("--rate", self.rate), ("--duration", self.duration_s),
                            ("--timeout", self.timeout_s), ("--p99-budget-ms",
                                                            self.p99_budget_ms)):
            if not (math.isfinite(value) and value > 0):
                found.append(f"{name} must be a positive number, got {value:g}")
        for name, count in (("--terminals", self.terminals),
                            ("--connections", self.connections),
                            ("--population", 1 if self.population is None else self.population)):
            if count < 1:
                found.append(f"{name} must be at least 1, got {count}")
        if not (math.isfinite(self.drain_s) and self.drain_s >= 0):
            found.append(f"--drain must be 0 or more seconds, got {self.drain_s:g}")
        if not 0 <= self.fault_share < 1:
            found.append(f"--faults is a share from 0 to below 1, got {self.fault_share:g}")
        if not 0 <= self.sm2_share <= 1:
            found.append(f"--sm2-share is a share from 0 to 1, got {self.sm2_share:g}")
        if self.rate * self.duration_s < 1:
            found.append("--rate × --duration must make at least one request")
        if self.scenario not in MODES:
            found.append(f"unknown --scenario {self.scenario!r}; one of {sorted(MODES)}")
        return found


def _progress(stats: RunStats, now_s: float) -> None:
    print(stats.progress_line(now_s), flush=True)


async def run_load(opts: LoadOptions) -> dict[str, Any]:
    """Run one load test and return the report document (also written to `out_dir`)."""
    url = require_loopback(opts.url)
    terminal_url = url if opts.terminal_url is None else require_loopback(opts.terminal_url)
    problems = opts.problems()
    if problems:
        raise ValueError("; ".join(problems))
    keys, city = load_sim_keys(opts.keys_dir), load_city_config(opts.config_dir)
    seed = secrets.randbits(32) if opts.seed is None else opts.seed
    setup_started = time.perf_counter()
    population = Population(keys, city, seed=seed, sm2_share=opts.sm2_share)
    holders = population.generate(opts.population or max(2000, int(opts.rate * 3)))
    qr_total = math.ceil(opts.rate * opts.duration_s * MODES[opts.scenario][1])
    workers = os.cpu_count() or 1
    pool = QrPool(time.time() + (estimate_build_s(qr_total, workers, opts.sm2_share)
                                 if qr_total else 0))
    # before the HTTP session: the pre-build may fork worker processes
    await pool.prebuild([h for h in holders if h.has_ecard], qr_total, opts.duration_s,
                        workers=workers)
    connector = aiohttp.TCPConnector(limit=opts.connections, limit_per_host=opts.connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        with tempfile.TemporaryDirectory(prefix="sim-registry-") as workdir:
            registration = await register(
                session, url, holders, admin_token=opts.admin_token, store_url=opts.store_url,
                keys_dir=opts.keys_dir, config_dir=opts.config_dir, workdir=Path(workdir))
        oracle = Oracle(city, registry_loaded=registration.loaded)
        if registration.loaded:
            oracle.blocked_cards.update(c.card_no for h in holders for c in h.lost_cards)
        fleet = Fleet(city, keys, session, terminal_url, timeout_s=opts.timeout_s)
        kinds = MODES[opts.scenario][0]
        chosen = sorted((t for t in fleet.enabled if t.spec.kind in kinds), key=lambda t: t.id)
        terminals = chosen[:opts.terminals]
        traffic = Traffic(city, terminals, holders, oracle, mode=opts.scenario, qr_pool=pool,
                          seed=seed, fault_share=opts.fault_share)
        # start when the first window begins: codes used earlier would be too early
        await asyncio.sleep(max(pool.start_wall - time.time(), 0))
        setup_s = time.perf_counter() - setup_started
        print(f"set-up {setup_s:.1f} s: {len(holders)} holders (seed {seed}), "
              f"{terminals_line(len(terminals), opts.terminals, opts.scenario)}, "
              f"{qr_total} QR codes pre-built; "
              f"{registration.message}", flush=True)
        loop = OpenLoop(opts.rate, opts.duration_s, traffic.send, drain_s=opts.drain_s,
                        on_tick=_progress if opts.progress else None)
        started = dt.datetime.now(dt.UTC)
        stats = await loop.run()
    meta = {"url": url, "terminal_url": terminal_url, "scenario": opts.scenario,
            "rate": opts.rate, "duration_s": opts.duration_s, "terminals": len(terminals),
            "terminals_requested": opts.terminals, "connections": opts.connections,
            "population": len(holders), "seed": seed, "registry": registration.message,
            "qr_prebuilt": qr_total, "qr_built_live": pool.built_live,
            "fault_share": opts.fault_share, "started_utc": started.isoformat(timespec="seconds"),
            "setup_s": round(setup_s, 2), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    doc = build_report(stats, meta, p99_budget_ms=opts.p99_budget_ms)
    print(render_text(doc), flush=True)
    if opts.out_dir is not None:
        json_path, html_path = write_report(doc, opts.out_dir)
        print(f"wrote {json_path} and {html_path}", flush=True)
    return doc


def terminals_line(used: int, asked: int, scenario: str) -> str:
    """How many terminals run, and why not as many as asked: each signs with a secret the
    service knows, so only the configuration's enabled terminals of the scenario's kind can."""
    if used >= asked:
        return f"{used} terminals"
    return (f"{used} terminals ({asked} asked: the configuration has {used} enabled "
            f"for {scenario})")
