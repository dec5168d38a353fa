"""The dashboard over HTTP: page, auth, the live stream, the admin lookup, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from terminals_sim.terminal import TerminalClient
from tests.web.harness import CONFIG_DIR, WED_10, Service, age_birth
from validator.clock import FixedClock
from validator.settings import Settings
from validator.web.app import create_app
from validator.web.appkeys import LIVE_FEED

STREAM_WAIT_S = 10.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def next_snapshot(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next `snapshot` event of an SSE stream (comments and `retry:` skipped)."""
    event, data = "", b""
    async for raw in resp.content:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data += line[5:].strip()
        elif not line and data:
            if event == "snapshot":
                parsed: dict[str, Any] = orjson.loads(data)
                return parsed
            event, data = "", b""
    raise AssertionError("the stream ended")


async def snapshot_when(resp: aiohttp.ClientResponse, check: Any) -> dict[str, Any]:
    async with asyncio.timeout(STREAM_WAIT_S):
        while True:
            snap = await next_snapshot(resp)
            if check(snap):
                return snap


async def test_root_redirects_and_page_is_self_contained(service: Service) -> None:
    async with service.session.get(service.url + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/dashboard"
    async with service.session.get(service.url + "/dashboard") as resp:
        assert resp.status == 200
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        html = await resp.text()
    assert "/dashboard/static/dashboard.js" in html and "http" not in html.replace(
        "http-equiv", "")
    async with service.session.get(service.url + "/dashboard/static/dashboard.js") as resp:
        assert resp.status == 200


@pytest.mark.parametrize("path", ["/v1/dashboard/stream", "/v1/dashboard/snapshot",
                                  "/v1/dashboard/whoami"])
async def test_data_needs_a_token(service: Service, path: str) -> None:
    async with service.session.get(service.url + path) as resp:
        assert resp.status == 401
    async with service.session.get(service.url + path, headers=bearer("nope")) as resp:
        assert resp.status == 401


async def test_whoami_tells_the_role(service: Service, operator_tokens: dict[str, str]) -> None:
    for role in ("admin", "viewer"):
        async with service.session.get(service.url + "/v1/dashboard/whoami",
                                       headers=bearer(operator_tokens[role])) as resp:
            assert (await resp.json())["role"] == role


async def test_stream_delivers_live_snapshots(
    service: Service, operator_tokens: dict[str, str]
) -> None:
    holders = [service.holder(age_birth(72)) for _ in range(3)]
    async with service.session.get(service.url + "/v1/dashboard/stream",
                                   headers=bearer(operator_tokens["viewer"])) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = await next_snapshot(resp)
        assert first["totals"]["accepted"] == 0 and first["store"]["ok"] is True
        for holder in holders:
            assert (await service.tap("T-BUS-K1-001", holder)).body["decision"] == "accept"
        replay = holders[0].qr(service.clock.now(), nonce=b"n" * 8)
        await service.validate("T-BUS-K2-001", replay)
        assert (await service.validate("T-BUS-K2-001", replay)).body["reason"] == "replayed"
        forged = TerminalClient(service.session, service.url, "T-GATE-S03-01", b"\0" * 32)
        body = forged.body(holders[1].qr(service.clock.now()), service.scanned_at())
        assert (await forged.post(body, now=int(service.clock.now()))).status == 401

        snap = await snapshot_when(resp, lambda s: s["totals"]["denied"] >= 1
                                   and s["fraud"]["counts"].get("bad_terminal_signature"))
    assert snap["seq"] > first["seq"]
    assert snap["totals"] == {"accepted": 4, "denied": 1, "deny_pct": 20.0}
    assert snap["fares"]["free"] == 4 and snap["categories"] == {"senior": 4}
    assert snap["money"]["concession_yuan"] == "8.00"  # 4 free rides of 2 yuan
    kinds = [(f["kind"], f["terminal"]) for f in snap["fraud"]["feed"]]
    assert ("replay", "T-BUS-K2-001") in kinds
    assert ("bad_terminal_signature", "T-GATE-S03-01") in kinds
    terminals = {t["id"]: t for t in snap["terminals"]}
    assert terminals["T-BUS-K1-001"]["requests"] == 3
    assert terminals["T-BUS-K1-001"]["status"] == "ok"
    assert terminals["T-GATE-S03-01"]["bad_signatures"] == 1
    assert snap["latency"]["p50_ms"] is not None and snap["latency"]["count"] == 5
    text = orjson.dumps(snap)
    for holder in holders:
        assert holder.card.card_no.encode() not in text and holder.ref.encode() not in text


async def test_decisions_lookup_is_admin_only_and_masked(
    service: Service, operator_tokens: dict[str, str]
) -> None:
    senior, other = service.holder(age_birth(75)), service.holder(age_birth(30))
    await service.tap("T-BUS-K1-001", senior)
    await service.tap("T-BUS-K1-002", senior)
    await service.tap("T-BUS-K1-001", other)
    url = service.url + "/v1/dashboard/decisions"
    params = {"card_no": senior.card.card_no}
    async with service.session.get(url, params=params) as resp:
        assert resp.status == 401
    async with service.session.get(url, params=params,
                                   headers=bearer(operator_tokens["viewer"])) as resp:
        assert resp.status == 403
    admin = bearer(operator_tokens["admin"])
    for query in ({"card_no": senior.card.card_no}, {"holder_ref": senior.ref}):
        async with service.session.get(url, params=query, headers=admin) as resp:
            assert resp.status == 200
            found = await resp.json()
        assert [d["terminal"] for d in found["decisions"]] == ["T-BUS-K1-002", "T-BUS-K1-001"]
        assert found["scanned"] == 3 and found["truncated"] is False
        assert found["days"][0] == "2026-12-02"
        row = found["decisions"][0]
        assert row["card"] == senior.card.card_no[:3] + "****" + senior.card.card_no[-2:]
        raw = orjson.dumps(found)
        assert senior.card.card_no.encode() not in raw and senior.ref.encode() not in raw
        assert b"senior" not in raw and "rule" not in row and "categories" not in row
    for bad in ({}, {"card_no": "x"}, {"holder_ref": "ABC"},
                {"card_no": senior.card.card_no, "holder_ref": senior.ref},
                {"card_no": senior.card.card_no, "days": "30"}):
        async with service.session.get(url, params=bad, headers=admin) as resp:
            assert resp.status == 400, bad


async def test_metrics_show_store_terminals_and_capacity(service: Service) -> None:
    await service.tap("T-GATE-S12-01", service.holder(age_birth(40)))
    await service.app[LIVE_FEED].tick()
    async with service.session.get(service.url + "/metrics") as resp:
        text = await resp.text()
    assert 'validator_store_round_trip_seconds_count{op="ledger_read"}' in text
    assert "validator_store_up 1.0" in text
    assert ('validator_terminal_last_seen_timestamp_seconds{terminal="T-GATE-S12-01",'
            'venue="spot:S12"}') in text
    assert 'validator_spot_entries_today{spot="S12"} 1.0' in text
    assert 'validator_spot_capacity_ratio{spot="S12"} 0.0005' in text
    # the process and its garbage collector, for operators (docs/operations.md)
    assert "\nprocess_resident_memory_bytes " in text
    assert 'python_gc_collections_total{generation="2"}' in text


@pytest.mark.parametrize("service", ["redis"], indirect=True)
async def test_store_outage_shows_on_the_board(
    service: Service, request: pytest.FixtureRequest
) -> None:
    redis_server = request.getfixturevalue("redis_server")
    feed = service.app[LIVE_FEED]
    await feed.tick()
    assert feed.snapshot["store"]["ok"] is True
    last_ok = service.clock.now()
    assert feed.snapshot["store"]["last_ok_at"] == last_ok
    redis_server.stop()
    service.clock.advance(30)
    await feed.tick()
    # the page says since when its figures are frozen: the store's last answer
    assert feed.snapshot["store"] == {"ok": False, "ping_ms": None, "last_ok_at": last_ok}
    redis_server.start()
    await feed.tick()
    assert feed.snapshot["store"]["ok"] is True
    assert feed.snapshot["store"]["last_ok_at"] == last_ok + 30


async def test_whoami_names_the_zone_and_every_venue(
    service: Service, operator_tokens: dict[str, str]
) -> None:
    async with service.session.get(service.url + "/v1/dashboard/whoami", headers={
            "Authorization": f"Bearer {operator_tokens['viewer']}"}) as resp:
        who = await resp.json()
    assert (who["time_zone"], who["time_zone_abbr"]) == ("Asia/Shanghai", "CST")
    assert who["venues"]["spot:S01"] == {"name": "云栖古镇", "name_en": "Yunqi Old Town",
                                         "operator": "OP-SPOT-S01"}
    assert who["venues"]["bus:K2"] == {"name": "K2 路 · 市公交集团",
                                       "name_en": "Route K2 · City Bus Group",
                                       "operator": "OP-BUS-CITY"}


async def test_board_rolls_over_at_local_midnight(service: Service) -> None:
    feed = service.app[LIVE_FEED]
    await service.tap("T-BUS-K1-001", service.holder(age_birth(80)))
    await feed.tick()
    assert feed.snapshot["totals"]["accepted"] == 1
    midnight = dt.datetime(2026, 12, 3, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    service.clock.set(midnight.timestamp())
    await feed.tick()
    assert feed.snapshot["day"] == "2026-12-03" and feed.snapshot["totals"]["accepted"] == 0
    await service.tap("T-BUS-K1-001", service.holder(age_birth(80, midnight.timestamp())))
    await feed.tick()
    assert feed.snapshot["totals"]["accepted"] == 1


async def test_open_streams_do_not_hold_up_shutdown(
    keys_dir: Path, operator_tokens: dict[str, str]
) -> None:
    app = create_app(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir), clock=FixedClock(WED_10))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        resp = await session.get(server.make_url("/v1/dashboard/stream"),
                                 headers=bearer(operator_tokens["viewer"]))
        await next_snapshot(resp)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 5  # not the graceful-shutdown timeout
        resp.release()
