"""`serve --no-dashboard`: a validator of a fleet whose dashboard runs elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.web.conftest import serving
from tests.web.harness import Service, age_birth
from validator.settings import Settings
from validator.web.appkeys import LIVE_FEED

BUS = "T-BUS-K1-001"


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
    assert bad.status == 401  # an HTTP error with no board to tell: answered all the same
    async with headless.session.get(headless.url + "/metrics") as resp:
        text = await resp.text()
    assert 'validator_decisions_total{credential="ssc_card",decision="accept"' in text
    for path in ("/dashboard", "/v1/dashboard/snapshot", "/v1/dashboard/stream"):
        async with headless.session.get(headless.url + path) as resp:
            assert resp.status == 404, path
    assert LIVE_FEED not in headless.app
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "dashboard-live-feed"]
