"""`python -m terminals_sim demo`: a modest, living stream of traffic for `make run`.

Sends about `rate` requests per second until interrupted, as a city's day would:
terminals are drawn by the flow of the local hour (`footfall.py`: bus peaks, the
tourist curve inside opening hours, spots paced below their capacity), holders follow
their outings (`crowd.py`: a spot once, a few rides), and new holders keep arriving in
batches, each registered first (operator API or CLI when possible). Credentials are a
mix of card taps and fresh QR codes, 15 % of the e-cards SM2 on both levels (protocol
§2.1) when the key set has an SM2 issuer; 2 % are faults (replayed screenshots, altered
cryptograms, lost cards). Now and then a terminal loses its link for minutes and decides
alone, then uploads (`offline_spells.py`). Every `every_s` seconds one line sums up what
happened since the last one. `rehearsal.py` runs the same day offline, to check the deny
rate.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from terminals_sim.cityconf import load_city_config
from terminals_sim.crowd import Crowd
from terminals_sim.footfall import Footfall
from terminals_sim.keyset import SimKeys, load_sim_keys
from terminals_sim.netguard import require_loopback
from terminals_sim.offline_spells import (
    OFFLINE,
    OfflineSpells,
    OfflineTally,
    SpellPlan,
    spell_candidates,
)
from terminals_sim.open_loop import Outcome
from terminals_sim.oracle import Oracle
from terminals_sim.population import Holder, Population, has_sm2_issuer
from terminals_sim.qrpool import QrPool
from terminals_sim.registration import LoadError, Registration, register
from terminals_sim.rehearsal import BATCH
from terminals_sim.stats import LatencyHistogram
from terminals_sim.terminals import Fleet, SimTerminal
from terminals_sim.traffic import Traffic

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

Enrol = Callable[[list["Holder"]], Awaitable[object]]


@dataclass(frozen=True)
class DemoOptions:
    url: str
    keys_dir: Path
    config_dir: Path = Path("config")
    rate: float = 10.0
    population: int = 1000  # people out in the city at once (the crowd's size)
    every_s: float = 5.0
    seed: int | None = None
    admin_token: str | None = None
    store_url: str | None = None
    fault_share: float = 0.02
    wait_for_service_s: float = 30.0
    terminal_url: str | None = None  # POST /v1/validations goes here; None: `url`
    duration_s: float | None = None  # None: until cancelled
    # e-card holders with an SM2 device key and an SM2-issued credential (§2.1), when the
    # key set has an SM2 issuer
    sm2_share: float = 0.15
    # terminals cut off for minutes (offline_spells.py); at_once=0: never
    offline: SpellPlan = field(default_factory=SpellPlan)


@dataclass
class DemoResult:
    """What the stream sent, over the whole run."""

    labels: Counter[str]  # `accept/ok`, `deny/replayed`, an error kind, … (sent ones)
    mismatches: int  # offline ones included
    offline: OfflineTally | None = None  # None: no spells asked for

    @property
    def deny_share(self) -> float:
        total = sum(self.labels.values())
        denied = sum(v for k, v in self.labels.items() if k.startswith("deny/"))
        return denied / total if total else 0.0


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
        self.totals: Counter[str] = Counter()

    def add(self, outcome: Outcome, latency_s: float) -> None:
        if outcome.label.startswith(OFFLINE):  # decided by the terminal: nothing was sent
            return
        self.labels[outcome.label] += 1
        self.totals[outcome.label] += 1
        self.latency.record(latency_s)
        if outcome.mismatch is not None:
            self.mismatches += 1
            self.total_mismatches += 1
            print(f"MISMATCH {outcome.mismatch}", flush=True)

    def line(self, local: str, offline: OfflineSpells | None) -> str:
        n = sum(self.labels.values())
        accepts = sum(v for k, v in self.labels.items() if k.startswith("accept"))
        denies = ", ".join(f"{k.split('/', 1)[-1]} {v}" for k, v in self.labels.most_common()
                           if not k.startswith("accept"))
        text = (f"{local} {n} requests: {accepts} accepted"
                f" ({100 * (n - accepts) / n if n else 0:.0f} % not)"
                f"{'; ' + denies if denies else ''}; p50 {self.latency.percentile(50) * 1e3:.1f}"
                f" ms, p99 {self.latency.percentile(99) * 1e3:.1f} ms; "
                f"mismatches {self.mismatches}")
        if offline is not None:
            text += offline.line()
        self.labels.clear()
        self.latency = LatencyHistogram()
        self.mismatches = 0
        return text


async def _refill(crowd: Crowd, population: Population, traffic: Traffic, oracle: Oracle,
                  enrol: Enrol) -> None:
    """Keep the crowd's reserve of holders filled, each batch registered before use."""
    while True:
        if len(crowd.reserve) < BATCH // 2:
            batch = population.generate(BATCH)
            population.holders.clear()  # the crowd holds who is out; nobody else need
            if oracle.registry_loaded:
                try:
                    await enrol(batch)
                except (LoadError, aiohttp.ClientError) as exc:
                    # holders whose entries did not reach the service stay at home, so no
                    # expectation assumes a registry entry or a block the service lacks
                    print(f"demo: a batch of holders was not registered ({exc}); "
                          "its registry holders stay out of the stream", flush=True)
                    batch = [h for h in batch if not (h.categories or h.blocked
                                                      or h.lost_cards)]
                oracle.blocked_cards.update(c.card_no for h in batch for c in h.lost_cards)
                traffic.lost_cards.extend(c for h in batch for c in h.lost_cards)
            crowd.arrive(batch)
        await asyncio.sleep(0.5)


def _sm2_note(asked: float, share: float) -> str:
    if asked > 0 and share == 0:
        return "no SM2 e-cards (the key set has no SM2 issuer)"
    return f"{share:.0%} of e-card holders carry SM2 e-cards"


async def run_demo(opts: DemoOptions) -> DemoResult:
    """Run for `duration_s` or until cancelled (Ctrl-C)."""
    url = require_loopback(opts.url)
    terminal_url = url if opts.terminal_url is None else require_loopback(opts.terminal_url)
    keys, city = load_sim_keys(opts.keys_dir), load_city_config(opts.config_dir)
    spell_candidates(opts.offline, city, keys)  # a wrong terminal id: refused up front
    seed = secrets.randbits(32) if opts.seed is None else opts.seed
    sm2_share = opts.sm2_share if has_sm2_issuer(keys) else 0.0
    population = Population(keys, city, seed=seed, sm2_share=sm2_share)
    holders = population.generate(BATCH)
    population.holders.clear()
    rng = random.Random(seed)
    crowd = Crowd(random.Random(seed + 1), size=opts.population)
    window = _Window()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        await _wait_ready(session, url, opts.wait_for_service_s)

        async def enrol(batch: list[Holder]) -> Registration:
            with tempfile.TemporaryDirectory(prefix="sim-registry-") as workdir:
                return await register(
                    session, url, batch, admin_token=opts.admin_token,
                    store_url=opts.store_url, keys_dir=opts.keys_dir,
                    config_dir=opts.config_dir, workdir=Path(workdir))

        try:
            registration = await enrol(holders)
        except LoadError as exc:  # a demo without the registry still shows traffic
            registration = Registration(False, f"registry NOT loaded: {exc}")
        print(f"demo: holders arrive in batches of {BATCH}, up to {opts.population} out at "
              f"once (seed {seed}); {_sm2_note(opts.sm2_share, sm2_share)}; first batch: "
              f"{registration.message}", flush=True)
        oracle = Oracle(city, registry_loaded=registration.loaded)
        if registration.loaded:
            oracle.blocked_cards.update(c.card_no for h in holders for c in h.lost_cards)
        crowd.arrive(holders)
        fleet = Fleet(city, keys, session, terminal_url)
        footfall = Footfall(city, [t.spec for t in fleet.enabled], random.Random(seed + 2))

        def pick(_: int) -> SimTerminal:
            return fleet.all[footfall.pick(city.local(time.time()), oracle.entries).id]

        spells = await _spells(opts, session, url, fleet, keys, oracle, seed)
        traffic = Traffic(city, fleet.enabled, holders, oracle, mode="mixed",
                          qr_pool=QrPool(time.time()), seed=seed,
                          fault_share=opts.fault_share, pick=pick, crowd=crowd,
                          offline=spells)
        refill = asyncio.create_task(_refill(crowd, population, traffic, oracle, enrol))
        background = [refill] + ([] if spells is None else [asyncio.create_task(spells.run())])
        tasks: set[asyncio.Task[None]] = set(background)

        async def one(i: int) -> None:
            started = time.perf_counter()
            try:
                outcome = await traffic.send(i, started)
            except Exception as exc:  # shown in the next summary; the stream goes on
                outcome = Outcome(type(exc).__name__, error=True)
            window.add(outcome, time.perf_counter() - started)

        i, next_line = 0, time.monotonic() + opts.every_s
        stop = math.inf if opts.duration_s is None else time.monotonic() + opts.duration_s
        try:
            while time.monotonic() < stop:
                task = asyncio.create_task(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
                # Poisson arrivals: real passengers do not come on a metronome
                await asyncio.sleep(rng.expovariate(opts.rate))
                if time.monotonic() >= next_line:
                    now = time.time()
                    print(window.line(f"{city.local(now):%H:%M:%S}", spells), flush=True)
                    # the day's counters only: a demo that runs for days stays small
                    oracle.forget_before(city.local(now).date(), now)
                    next_line += opts.every_s
            for task in background:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # the last answers
            if spells is not None:  # the run is over: every terminal comes back, uploads
                await spells.close()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    offline = None if spells is None else spells.total
    return DemoResult(window.totals,
                      window.total_mismatches + (offline.mismatches if offline else 0), offline)


async def _spells(opts: DemoOptions, session: aiohttp.ClientSession, url: str, fleet: Fleet,
                  keys: SimKeys, oracle: Oracle, seed: int) -> OfflineSpells | None:
    """The offline spells, probed (`total.skipped` says why they cannot run); None if
    none were asked for."""
    if not opts.offline.at_once:
        return None
    spells = OfflineSpells(opts.offline, session=session, url=url, keys_dir=opts.keys_dir,
                           keys=keys, fleet=fleet.all, oracle=oracle, city=fleet.city,
                           rng=random.Random(seed + 3),
                           say=lambda line: print(line, flush=True))
    await spells.start()
    return spells
