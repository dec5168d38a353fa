"""Two validator processes' apps on one Redis: one reads the ledger, both show its board."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from terminals_sim.terminal import TerminalClient
from tests.web.conftest import serving
from tests.web.harness import Service, age_birth
from validator.settings import Settings
from validator.web.appkeys import LIVE_FEED

WAIT_S = 10.0
LEDGER_READS = 'validator_store_round_trip_seconds_count{op="ledger_read"}'


async def board(service: Service, token: str) -> dict[str, Any]:
    async with service.session.get(service.url + "/v1/dashboard/snapshot",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        snapshot: dict[str, Any] = await resp.json()
        return snapshot


async def board_when(service: Service, token: str, check: Any) -> dict[str, Any]:
    """The process's snapshot over HTTP, once `check` holds (woken at each new one)."""
    async with asyncio.timeout(WAIT_S):
        while not check(snapshot := await board(service, token)):
            await service.app[LIVE_FEED].wait(snapshot["seq"], WAIT_S)
    return snapshot


async def test_two_processes_share_one_reader_and_hand_over(
    redis_url: str, keys_dir: Path, config_dir: Path, operator_tokens: dict[str, str]
) -> None:
    settings = Settings(config_dir=config_dir, keys_dir=keys_dir, store_url=redis_url)
    viewer = operator_tokens["viewer"]
    async with contextlib.AsyncExitStack() as first_stack:
        first = await first_stack.enter_async_context(serving(settings))
        async with serving(settings) as second:
            assert first.app[LIVE_FEED].leading and not second.app[LIVE_FEED].leading
            holders = [second.holder(age_birth(72)) for _ in range(3)]
            for holder in holders:  # decided by the second process, read by the first
                assert (await second.tap("T-BUS-K1-001", holder)).body["decision"] == "accept"
            forged = TerminalClient(second.session, second.url, "T-GATE-S03-01", b"\0" * 32)
            body = forged.body(holders[0].qr(second.clock.now()), second.scanned_at())
            assert (await forged.post(body, now=int(second.clock.now()))).status == 401

            def complete(snap: dict[str, Any]) -> bool:
                gate = next(t for t in snap["terminals"] if t["id"] == "T-GATE-S03-01")
                return snap["totals"]["accepted"] == 3 and gate["bad_signatures"] == 1

            seen = [await board_when(service, viewer, complete) for service in (first, second)]
            assert [s["feed"]["role"] for s in seen] == ["leader", "follower"]
            assert seen[0]["totals"] == seen[1]["totals"]
            assert await second.metric(LEDGER_READS) is None
            assert (await first.metric(LEDGER_READS) or 0) > 0
            assert await second.metric("validator_live_feed_leader") == 0.0
            assert await first.metric("validator_live_feed_leader") == 1.0

            await first_stack.aclose()  # the leader stops and gives its lease up
            after = await board_when(second, viewer, lambda s: s["feed"]["role"] == "leader")
            assert after["totals"]["accepted"] == 3  # rebuilt from the ledger
            gate = next(t for t in after["terminals"] if t["id"] == "T-GATE-S03-01")
            assert gate["bad_signatures"] == 1  # and from the error stream, once
