"""A bundle refresh never holds up gate answers: they keep coming while it is built."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

from tests.offline.client import get_bundle
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR
from validator.policy.types import Category
from validator.settings import Settings

GATE = "T-GATE-S01-01"
BUS = "T-BUS-K1-001"
HOLDERS = 30_000  # the day's first build seals each: long enough to scan during it


async def test_validations_are_answered_while_a_bundle_is_built(keys_dir: Path) -> None:
    async with serving(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir)) as service:
        await service.store.put_holders(
            [(os.urandom(16).hex(), (Category("veteran"),)) for _ in range(HOLDERS)])
        holder = service.holder(dt.date(1990, 1, 1))
        building = asyncio.create_task(get_bundle(service, GATE))
        answered_meanwhile = 0
        while not building.done():
            reply = await service.validate(BUS, holder.qr(service.clock.now()))
            assert reply.status == 200 and reply.body["decision"] == "accept"
            answered_meanwhile += not building.done()
        status, _, _ = await building
    assert status == 200
    # Before the build moved off the event loop, no answer came until it was done.
    assert answered_meanwhile >= 3
