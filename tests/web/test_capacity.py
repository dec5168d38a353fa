"""Capacity under concurrency: a spot of capacity 7 never lets an 8th holder in."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.web.harness import Service, age_birth
from validator.ledger.record import LedgerRecord


@pytest.fixture
def config_dir(edit_config: Callable[[str, str, str], Path]) -> Path:
    return edit_config("city.toml", "capacity_per_day = 2000\n", "capacity_per_day = 7\n")


async def test_concurrent_entries_never_overshoot_capacity(service: Service) -> None:
    holders = [service.holder(age_birth(30 + i % 40, service.clock.now())) for i in range(40)]
    gates = ["T-GATE-S12-01", "T-GATE-S12-02"]
    replies = await asyncio.gather(*(
        service.tap(gates[i % 2], h) for i, h in enumerate(holders)))
    reasons = [r.body["reason"] for r in replies]
    assert reasons.count("ok") == 7, reasons
    assert reasons.count("capacity_reached") == 33
    ledger = [LedgerRecord.from_json(raw)
              for _, raw in await service.store.ledger_read(dt.date(2026, 12, 2))]
    assert sum(r.decision == "accept" for r in ledger) == 7
    assert len(ledger) == 40
