"""Run every scenario once against a service and report each mismatch.

    report = await run_scenarios("http://127.0.0.1:8099", Path("keys/dev"), Path("config"),
                                 admin_token=token)
    assert report.ok, report.text()

A run draws a fresh cast (its seed is in the notes; pass `seed` to repeat one), loads
its registry and block list when it can (operator API with `admin_token`, or the
validator CLI with a persistent `store_url`), then runs, in order: normal traffic
(`normal.py`), credential faults (`faults.py`, `sm2_faults.py`), request faults
(`wire_faults.py`) and last the capacity scenario (`capacity.py`), which fills a spot
for the rest of the day. When the key set has an SM2 issuer, `SM2_SHARE` of the cast's
crowd carries all-SM2 e-cards (protocol §2.1).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from terminals_sim.capacity import CAPACITY
from terminals_sim.cast import build_cast
from terminals_sim.checks import Scenario, ScenarioReport, Stage
from terminals_sim.cityconf import load_city_config
from terminals_sim.faults import CREDENTIAL_FAULTS
from terminals_sim.keyset import load_sim_keys
from terminals_sim.netguard import require_loopback
from terminals_sim.normal import NORMAL
from terminals_sim.oracle import Oracle
from terminals_sim.population import Population, has_sm2_issuer
from terminals_sim.registration import LoadError, register
from terminals_sim.sm2_faults import SM2_FAULTS
from terminals_sim.terminals import Fleet
from terminals_sim.wire_faults import WIRE_FAULTS

__all__ = ["ALL", "ScenarioReport", "run_scenarios", "run_scenarios_sync"]

SM2_SHARE = 0.15  # of e-card holders in the cast's crowd (protocol §2.1)
ALL: tuple[Scenario, ...] = NORMAL + CREDENTIAL_FAULTS + SM2_FAULTS + WIRE_FAULTS + CAPACITY


async def run_scenarios(base_url: str, keys_dir: Path, config_dir: Path,
                        admin_token: str | None = None, *, store_url: str | None = None,
                        seed: int | None = None, only: Sequence[str] | None = None,
                        timeout_s: float = 5.0,
                        terminal_url: str | None = None) -> ScenarioReport:
    """Run the scenarios (all, or those named in `only`) once; never raises for a wrong
    answer — read `report.ok` / `report.text()`.

    `terminal_url`: where `POST /v1/validations` goes (e.g. a validator's
    `--terminal-port`); default `base_url`, which keeps the operator API calls."""
    base_url = require_loopback(base_url)
    terminal_url = base_url if terminal_url is None else require_loopback(terminal_url)
    unknown = set(only or ()) - {s.name for s in ALL}
    if unknown:
        raise ValueError(f"unknown scenarios: {sorted(unknown)}; known: {[s.name for s in ALL]}")
    keys, city = load_sim_keys(keys_dir), load_city_config(config_dir)
    seed = secrets.randbits(32) if seed is None else seed
    # the realistic mix with some all-SM2 e-cards, when the key set can issue them
    population = Population(keys, city, seed=seed,
                            sm2_share=SM2_SHARE if has_sm2_issuer(keys) else 0.0)
    cast = build_cast(population)
    report = ScenarioReport(notes=[f"seed {seed}"])
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        with tempfile.TemporaryDirectory(prefix="sim-registry-") as workdir:
            try:
                registration = await register(
                    session, base_url, cast.everyone(), admin_token=admin_token,
                    store_url=store_url, keys_dir=keys_dir, config_dir=config_dir,
                    workdir=Path(workdir))
                loaded = registration.loaded
                report.notes.append(registration.message)
            except (LoadError, aiohttp.ClientError) as exc:
                loaded = False
                report.errors["registry"] = str(exc)
        oracle = Oracle(city, registry_loaded=loaded)
        if loaded:
            oracle.blocked_cards.update(c.card_no for h in cast.everyone() for c in h.lost_cards)
        fleet = Fleet(city, keys, session, terminal_url, timeout_s=timeout_s)
        stage = Stage(base_url, terminal_url, city, keys, session, fleet, oracle, population,
                      report, admin_token)
        for scenario in ALL:
            if only and scenario.name not in only:
                continue
            if scenario.needs_registry and not loaded:
                report.skipped[scenario.name] = "needs the registry loaded"
                continue
            stage.scenario = scenario.name
            try:
                await scenario.run(stage, cast)
            except Exception as exc:  # one broken scenario must not hide the others
                report.errors[scenario.name] = f"{type(exc).__name__}: {exc}"
    return report


def run_scenarios_sync(base_url: str, keys_dir: Path, config_dir: Path,
                       admin_token: str | None = None, **options: object) -> ScenarioReport:
    """`run_scenarios` for callers without an event loop (a plain test, a script)."""
    return asyncio.run(run_scenarios(base_url, keys_dir, config_dir, admin_token,
                                     **options))  # type: ignore[arg-type]
