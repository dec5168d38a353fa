"""`python -m terminals_sim demo`: a modest, living stream of traffic for `make run`.

Registers a small population (operator API or CLI when possible), then sends about
`rate` requests per second until interrupted: terminals are drawn by the arrival
profiles of the local hour (bus peaks, the tourist curve; spots are closed at night),
credentials are a mix of card taps and fresh QR codes, and a few per cent are faults
(replayed screenshots, altered cryptograms, lost cards). Every `every_s` seconds one
line sums up what happened since the last one.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from terminals_sim.cityconf import load_city_config
from terminals_sim.keyset import load_sim_keys
from terminals_sim.load import Outcome
from terminals_sim.loader import LoadError, Registration, register
from terminals_sim.netguard import require_loopback
from terminals_sim.oracle import Oracle
from terminals_sim.population import Population
from terminals_sim.qrpool import QrPool
from terminals_sim.stats import LatencyHistogram
from terminals_sim.terminals import Fleet, SimTerminal
from terminals_sim.traffic import Traffic

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    url: str
    keys_dir: Path
    config_dir: Path = Path("config")
    rate: float = 10.0
    population: int = 300
    every_s: float = 5.0
    seed: int | None = None
    admin_token: str | None = None
    store_url: str | None = None
    fault_share: float = 0.04
    wait_for_service_s: float = 30.0
    terminal_url: str | None = None  # POST /v1/validations goes here; None: `url`


async def _wait_ready(session: aiohttp.ClientSession, url: str, patience_s: float) -> None:
    """`make run` starts the service and the demo together: wait for /healthz."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            async with session.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}/healthz did not answer within {patience_s:.0f} s")
        await asyncio.sleep(0.5)


class _Window:
    """What happened since the last summary line."""

    def __init__(self) -> None:
        self.labels: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        self.mismatches = 0
        self.total_mismatches = 0

    def add(self, outcome: Outcome, latency_s: float) -> None:
        self.labels[outcome.label] += 1
        self.latency.record(latency_s)
        if outcome.mismatch is not None:
            self.mismatches += 1
            self.total_mismatches += 1
            print(f"MISMATCH {outcome.mismatch}", flush=True)

    def line(self, local: str) -> str:
        n = sum(self.labels.values())
        accepts = sum(v for k, v in self.labels.items() if k.startswith("accept"))
        denies = ", ".join(f"{k.split('/', 1)[-1]} {v}" for k, v in self.labels.most_common()
                           if not k.startswith("accept"))
        text = (f"{local} {n} requests: {accepts} accepted"
                f"{'; ' + denies if denies else ''}; p50 {self.latency.percentile(50) * 1e3:.1f}"
                f" ms, p99 {self.latency.percentile(99) * 1e3:.1f} ms; "
                f"mismatches {self.mismatches}")
        self.labels.clear()
        self.latency = LatencyHistogram()
        self.mismatches = 0
        return text


async def run_demo(opts: DemoOptions) -> int:
    """Run until cancelled (Ctrl-C); returns the number of mismatches seen."""
    url = require_loopback(opts.url)
    terminal_url = url if opts.terminal_url is None else require_loopback(opts.terminal_url)
    keys, city = load_sim_keys(opts.keys_dir), load_city_config(opts.config_dir)
    seed = secrets.randbits(32) if opts.seed is None else opts.seed
    holders = Population(keys, city, seed=seed).generate(opts.population)
    rng = random.Random(seed)
    window = _Window()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        await _wait_ready(session, url, opts.wait_for_service_s)
        with tempfile.TemporaryDirectory(prefix="sim-registry-") as workdir:
            try:
                registration = await register(
                    session, url, holders, admin_token=opts.admin_token,
                    store_url=opts.store_url, keys_dir=opts.keys_dir,
                    config_dir=opts.config_dir, workdir=Path(workdir))
            except LoadError as exc:  # a demo without the registry still shows traffic
                registration = Registration(False, f"registry NOT loaded: {exc}")
        print(f"demo: {len(holders)} holders (seed {seed}); {registration.message}", flush=True)
        oracle = Oracle(city, registry_loaded=registration.loaded)
        if registration.loaded:
            oracle.blocked_cards.update(c.card_no for h in holders for c in h.lost_cards)
        fleet = Fleet(city, keys, session, terminal_url)

        def pick(_: int) -> SimTerminal:
            return fleet.pick(rng, city.local(time.time()))

        traffic = Traffic(city, fleet.enabled, holders, oracle, mode="mixed",
                          qr_pool=QrPool(time.time()), seed=seed,
                          fault_share=opts.fault_share, pick=pick)
        tasks: set[asyncio.Task[None]] = set()

        async def one(i: int) -> None:
            started = time.perf_counter()
            try:
                outcome = await traffic.send(i, started)
            except Exception as exc:  # shown in the next summary; the stream goes on
                outcome = Outcome(type(exc).__name__, error=True)
            window.add(outcome, time.perf_counter() - started)

        i, next_line = 0, time.monotonic() + opts.every_s
        try:
            while True:
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
                # Poisson arrivals: real passengers do not come on a metronome
                await asyncio.sleep(rng.expovariate(opts.rate))
                if time.monotonic() >= next_line:
                    print(window.line(f"{city.local(time.time()):%H:%M:%S}"), flush=True)
                    next_line += opts.every_s
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return window.total_mismatches
