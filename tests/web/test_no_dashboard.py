"""`serve --no-dashboard`: a validator of a fleet whose dashboard runs elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from terminals_sim.terminal import TerminalClient
from tests.web.conftest import serving
from tests.web.harness import Service, age_birth
from validator.settings import Settings
from validator.web.appkeys import ERROR_REPORTER, LIVE_FEED

BUS = "T-BUS-K1-001"
LEDGER_READS = 'validator_store_round_trip_seconds_count{op="ledger_read"}'


@pytest.fixture(params=["memory", "redis"])
async def headless(
    request: pytest.FixtureRequest, keys_dir: Path, config_dir: Path
) -> AsyncIterator[Service]:
    store_url = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    async with serving(Settings(config_dir=config_dir, keys_dir=keys_dir, store_url=store_url,
                                dashboard=False)) as service:
        yield service


async def test_it_validates_and_counts_but_serves_no_dashboard_and_reads_no_ledger(
    headless: Service,
) -> None:
    holder = headless.holder(age_birth(67))
    reply = await headless.tap(BUS, holder)
    assert reply.body["decision"] == "accept", reply.body
    bad = await headless.validate("T-NOBODY-01", holder.qr(headless.clock.now()))
    assert bad.status == 401  # for the board of whichever process serves it
    async with headless.session.get(headless.url + "/metrics") as resp:
        text = await resp.text()
    assert 'validator_decisions_total{credential="ssc_card",decision="accept"' in text
    for path in ("/dashboard", "/v1/dashboard/snapshot", "/v1/dashboard/stream"):
        async with headless.session.get(headless.url + path) as resp:
            assert resp.status == 404, path
    assert LIVE_FEED not in headless.app
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "dashboard-live-feed"]
    assert await headless.metric(LEDGER_READS) is None
    await headless.app[ERROR_REPORTER].report()  # what its task does every second
    [(_, raw)] = await headless.store.feed_errors_read()
    assert orjson.loads(raw) == [["T-NOBODY-01", 401, 1, headless.clock.now()]]


async def test_its_http_errors_reach_the_board_of_the_dashboard_process(
    redis_url: str, keys_dir: Path, config_dir: Path
) -> None:
    settings = Settings(config_dir=config_dir, keys_dir=keys_dir, store_url=redis_url)
    async with serving(settings) as board_process, \
            serving(settings.model_copy(update={"dashboard": False})) as terminal_facing:
        holder = terminal_facing.holder(age_birth(30))
        forged = TerminalClient(terminal_facing.session, terminal_facing.url,
                                "T-GATE-S03-01", b"\0" * 32)
        body = forged.body(holder.qr(terminal_facing.clock.now()),
                           terminal_facing.scanned_at())
        assert (await forged.post(body, now=int(terminal_facing.clock.now()))).status == 401
        feed = board_process.app[LIVE_FEED]
        async with asyncio.timeout(10):
            while True:  # the reporter's tick, then the feed's
                gate = next(t for t in feed.snapshot["terminals"] if t["id"] == "T-GATE-S03-01")
                if gate["bad_signatures"] == 1:
                    break
                await feed.wait(feed.snapshot["seq"], 10)
        assert feed.snapshot["fraud"]["counts"] == {"bad_terminal_signature": 1}
