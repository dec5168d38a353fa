"""Operators see offline terminals: the dashboard's board over HTTP, on both stores."""

from __future__ import annotations

from typing import Any

from tests.admin.client import VIEWER_TOKEN
from tests.offline.client import get_bundle
from tests.offline.records import record, upload
from tests.web.harness import Service, age_birth
from validator.web.appkeys import LIVE_FEED

BUS, BUS2, GATE = "T-BUS-K1-001", "T-BUS-K1-002", "T-GATE-S01-01"


async def _board(service: Service) -> dict[str, Any]:
    await service.app[LIVE_FEED].tick()
    async with service.session.get(service.url + "/v1/dashboard/snapshot", headers={
            "Authorization": f"Bearer {VIEWER_TOKEN}"}) as resp:
        assert resp.status == 200
        board: dict[str, Any] = await resp.json()
    return board


def _row(board: dict[str, Any], terminal_id: str) -> dict[str, Any]:
    rows = [r for r in board["offline"] if r["id"] == terminal_id]
    assert len(rows) == 1, board["offline"]
    return rows[0]


async def test_a_terminal_out_of_contact_shows_its_bundle_age_and_pending_uploads(
        service: Service) -> None:
    assert (await _board(service))["offline"] == []
    fetched = service.clock.now()
    for terminal_id in (BUS, BUS2, GATE):
        assert (await get_bundle(service, terminal_id))[0] == 200
    holder = service.holder(age_birth(30))
    at = fetched - 300
    qr = holder.qr(at)
    await upload(service, BUS, [record(qr, at), record(holder.qr(at + 5), at + 5)])
    board = await _board(service)
    row = _row(board, BUS)
    assert (row["status"], row["uploaded_today"], row["last_upload_at"],
            row["bundle_fetched_at"], row["pending_since"]) == \
        ("online", 2, fetched, fetched, None)
    service.clock.advance(3600)  # an hour without a word from BUS; GATE keeps in touch
    assert (await get_bundle(service, GATE))[0] == 200
    await upload(service, BUS2, [record(qr, at + 30)])  # the screenshot, at another bus
    board = await _board(service)
    bus = _row(board, BUS)
    assert (bus["status"], bus["bundle_age_s"], bus["pending_since"]) == \
        ("offline", 3600, fetched)
    assert _row(board, GATE)["status"] == "online"
    assert _row(board, BUS2)["uploaded_today"] == 1
    assert board["offline"][0]["id"] == BUS  # the longest out of contact first
    kinds = [(f["kind"], f["terminal"]) for f in board["fraud"]["feed"]]
    assert ("offline_double_use", BUS2) in kinds
    assert board["fraud"]["counts"]["offline_double_use"] == 1


async def test_a_bundle_older_than_the_maximum_offline_age_is_shown_expired(
        service: Service) -> None:
    assert (await get_bundle(service, BUS))[0] == 200
    service.clock.advance(86_400 + 60)
    board = await _board(service)
    row = _row(board, BUS)
    assert (row["status"], row["bundle_age_s"]) == ("expired", 86_460)
    assert row["uploaded_today"] == 0 and row["last_upload_at"] is None
