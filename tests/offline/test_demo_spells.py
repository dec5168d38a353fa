"""The demo stream's offline spells against a real service (memory store, the wall clock):
terminals cut off for seconds decide alone, come back, upload; the settlement holds
exactly the live accepts and the uploaded records the service accepted."""

from __future__ import annotations

import contextlib
import random
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from terminals_sim.card import new_un
from terminals_sim.cityconf import load_city_config
from terminals_sim.cli import main
from terminals_sim.demo import DemoOptions, run_demo
from terminals_sim.keyset import load_sim_keys
from terminals_sim.offline_spells import OfflineSpells, SpellPlan
from terminals_sim.offline_terminal import LocalDecision
from terminals_sim.offline_upload import judge
from terminals_sim.oracle import Oracle
from terminals_sim.population import Population
from terminals_sim.terminals import Fleet
from tests.admin.client import ADMIN_TOKEN
from tests.web.harness import CONFIG_DIR
from validator.clock import SystemClock
from validator.settings import Settings
from validator.web.app import create_app

BUSES = ("T-BUS-K1-001", "T-BUS-K2-001", "T-BUS-K3-001", "T-BUS-S101-001")


@contextlib.asynccontextmanager
async def _service(config_dir: Path, keys_dir: Path) -> AsyncIterator[str]:
    """The validator on loopback with the wall clock (the demo signs with it)."""
    app = create_app(Settings(config_dir=config_dir, keys_dir=keys_dir, store_url="memory"),
                     clock=SystemClock())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _settled_today(url: str, config_dir: Path) -> int:
    today = load_city_config(config_dir).local(time.time()).date()
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/v1/settlement?date={today}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
        assert resp.status == 200
        return int((await resp.json())["totals"]["count"])


def _options(url: str, keys_dir: Path, config_dir: Path, plan: SpellPlan) -> DemoOptions:
    return DemoOptions(url=url, keys_dir=keys_dir, config_dir=config_dir, rate=40, every_s=2,
                       seed=7, admin_token=ADMIN_TOKEN, duration_s=7, fault_share=0.02,
                       offline=plan)


async def test_spells_upload_every_record_once_and_settle_it(keys_dir: Path) -> None:
    plan = SpellPlan(at_once=len(BUSES), terminals=BUSES, length_s=(2.0, 3.0),
                     gap_s=(0.3, 0.6), refresh_s=1.0)
    async with _service(CONFIG_DIR, keys_dir) as url:
        result = await run_demo(_options(url, keys_dir, CONFIG_DIR, plan))
        settled = await _settled_today(url, CONFIG_DIR)
    offline = result.offline
    assert offline is not None and offline.skipped is None
    assert result.mismatches == 0, offline
    assert offline.spells >= len(BUSES)
    assert offline.decided > 0
    # every decision went up and was applied once; the first batch of each upload went
    # twice and came back `duplicate` entirely
    assert offline.uploaded == offline.decided
    assert 0 < offline.resent <= offline.decided
    # nothing is settled that the terminals turned away
    assert offline.settled <= offline.accepted
    live_accepts = sum(n for label, n in result.labels.items() if label.startswith("accept/"))
    assert settled == live_accepts + offline.settled


async def test_spells_are_skipped_when_the_service_has_offline_disabled(
        keys_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "offline.toml").unlink()
    plan = SpellPlan(at_once=2, terminals=BUSES, length_s=(1.0, 2.0), gap_s=(0.2, 0.4))
    async with _service(config, keys_dir) as url:
        result = await run_demo(_options(url, keys_dir, config, plan))
    assert result.offline is not None
    assert result.offline.skipped == "the service has offline terminals disabled"
    assert result.offline.decided == result.offline.spells == 0
    assert result.mismatches == 0
    out = capsys.readouterr().out
    assert out.count("offline spells skipped") == 1
    assert sum(result.labels.values()) > 100  # the stream itself went on


async def test_a_spell_past_the_bundles_not_after_accepts_nothing(keys_dir: Path) -> None:
    """A reader whose spell outlasted its bundle refuses every scan `bundle_expired`; at
    upload the service turns them into `terminal_denied`, an expected difference."""
    city, keys = load_city_config(CONFIG_DIR), load_sim_keys(keys_dir)
    holder = next(h for h in Population(keys, city, seed=3).generate(200)
                  if h.card is not None and h.has_ecard and not h.blocked
                  and not h.lost_cards and 20 <= h.age(city.local(time.time()).date()) < 60)
    lines: list[str] = []
    async with _service(CONFIG_DIR, keys_dir) as url, aiohttp.ClientSession() as session:
        fleet = Fleet(city, keys, session, url)
        spells = OfflineSpells(SpellPlan(terminals=BUSES[:1]), session=session, url=url,
                               keys_dir=keys_dir, keys=keys, fleet=fleet.all,
                               oracle=Oracle(city, registry_loaded=False), city=city,
                               rng=random.Random(1), say=lines.append)
        assert await spells.start()
        reader = await spells.sync(BUSES[0])
        now = int(time.time())
        reader.terminal.bundle.exp = now - 1  # as if it had been offline past its not-after
        spells.begin(reader, 0)
        bus = fleet.all[BUSES[0]]
        assert holder.card is not None
        tap = dict(holder.card.tap(bus.id, now, new_un()))
        outcomes = [spells.decide(bus, tap, now, holder),
                    spells.decide(bus, bus.qr_credential(holder.phone.qr(now)), now, holder)]
        await spells.end(reader)
    assert [o.label for o in outcomes if o is not None] == \
        ["offline/deny/bundle_expired"] * 2
    tally = spells.total
    assert (tally.uploaded, tally.differs, tally.settled, tally.mismatches) == (2, 2, 0, 0), lines
    assert any("(terminal_denied 2)" in line for line in lines), lines


@pytest.mark.parametrize(("local", "result", "wrong"), [
    (("accept", "ok"), ("accept", "ok", False), False),
    (("accept", "ok"), ("deny", "card_blocked", True), False),  # blocked after the bundle
    (("accept", "ok"), ("deny", "cryptogram_invalid", True), False),
    (("deny", "bundle_expired"), ("deny", "terminal_denied", True), False),
    (("deny", "bundle_expired"), ("deny", "venue_closed", True), False),
    (("deny", "replayed"), ("deny", "offline_double_use", True), False),
    (("accept", "ok"), ("deny", "venue_closed", True), True),  # hours are in the bundle
    (("accept", "ok"), ("deny", "bad_signature", True), True),  # the trust list is too
    (("accept", "ok"), ("accept", "ok", True), True),  # `differs` for equal decisions
    (("accept", "ok"), ("deny", "card_blocked", False), True),  # no `differs` flag
])
def test_a_result_is_judged_against_the_readers_decision(
        local: tuple[str, str], result: tuple[str, str, bool], wrong: bool) -> None:
    decision, reason, differs = result
    problem = judge(LocalDecision(*local), {"decision": decision, "reason": reason,
                                            "differs": differs})
    assert (problem is not None) == wrong, problem


@pytest.mark.parametrize(("args", "message"), [
    (["--offline-minutes", "soon"], "--offline-minutes takes MIN-MAX, e.g. 3-12"),
    (["--offline-minutes", "5-2"], "--offline-minutes takes 0 < MIN <= MAX"),
    (["--offline-spells", "-1"], "--offline-spells a number of terminals"),
    (["--offline-terminals", "T-BUS-K1-001,T-NOPE"], "T-NOPE is not an enabled terminal"),
])
def test_bad_spell_options_are_refused_on_one_line(
        args: list[str], message: str, keys_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--url", "http://127.0.0.1:9", "--keys", str(keys_dir),
                 "--config", str(CONFIG_DIR), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
