"""The block lists as lists: pages in order of id, viewer role, bad paging refused."""

from __future__ import annotations

import pytest

from tests.admin.client import VIEWER, call
from tests.web.harness import Service
from validator.state.store import Block

REFS = [f"{n:032x}" for n in range(1, 4)]


async def test_blocked_cards_page_in_order_with_a_next_cursor(service: Service) -> None:
    cards = [f"A{n:08d}" for n in range(5)]
    for card in reversed(cards):
        assert (await call(service, "PUT", f"/v1/admin/blocked-cards/{card}",
                           json_body={"reason": "lost"})).status == 200
    first = await call(service, "GET", "/v1/admin/blocked-cards?limit=2", role=VIEWER)
    assert first.status == 200
    assert first.body == {"next": cards[1], "blocks": [
        {"card_no": card, "reason": "lost", "until": None, "active": True}
        for card in cards[:2]]}
    second = await call(service, "GET", f"/v1/admin/blocked-cards?limit=2&after={cards[1]}",
                        role=VIEWER)
    assert [b["card_no"] for b in second.body["blocks"]] == cards[2:4]
    last = await call(service, "GET", f"/v1/admin/blocked-cards?after={cards[3]}",
                      role=VIEWER)
    assert [b["card_no"] for b in last.body["blocks"]] == cards[4:]
    assert last.body["next"] is None


async def test_blocked_holders_show_pseudonyms_and_whether_the_block_applies(
    service: Service
) -> None:
    await call(service, "PUT", f"/v1/admin/blocked-holders/{REFS[0]}",
               json_body={"reason": "fraud", "until": "2026-12-02"})
    await call(service, "PUT", f"/v1/admin/blocked-holders/{REFS[1]}")
    service.clock.advance(86400)  # the first block's `until` has passed: listed, inactive
    listed = await call(service, "GET", "/v1/admin/blocked-holders", role=VIEWER)
    assert listed.body == {"next": None, "blocks": [
        {"holder_ref": REFS[0], "reason": "fraud", "until": "2026-12-02", "active": False},
        {"holder_ref": REFS[1], "reason": None, "until": None, "active": True}]}
    assert (await call(service, "DELETE", f"/v1/admin/blocked-holders/{REFS[1]}")).status == 204
    again = await call(service, "GET", "/v1/admin/blocked-holders", role=VIEWER)
    assert [b["holder_ref"] for b in again.body["blocks"]] == [REFS[0]]


async def test_an_empty_list_is_an_empty_page(service: Service) -> None:
    for path in ("/v1/admin/blocked-cards", "/v1/admin/blocked-holders"):
        answer = await call(service, "GET", path, role=VIEWER)
        assert (answer.status, answer.body) == (200, {"blocks": [], "next": None})


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("limit=-1", "limit"),
    ("limit=", "limit"), ("limit=%EF%BC%91", "limit"), ("after=a1", "after"),
    ("after=A0000000%3B", "after"), ("after=", "after"),
])
async def test_bad_paging_is_a_400_naming_the_parameter(
    service: Service, query: str, field: str
) -> None:
    answer = await call(service, "GET", f"/v1/admin/blocked-cards?{query}", role=VIEWER)
    assert answer.status == 400 and answer.body["error"] == "invalid_request"
    assert answer.body["detail"].startswith(f"{field}:")


async def test_a_holder_list_takes_a_holder_ref_as_its_cursor(service: Service) -> None:
    bad = await call(service, "GET", "/v1/admin/blocked-holders?after=A00000001", role=VIEWER)
    assert bad.status == 400 and "holder_ref" in bad.body["detail"]
    await service.store.put_block("holder", REFS[2], Block())
    good = await call(service, "GET", f"/v1/admin/blocked-holders?after={REFS[0]}",
                      role=VIEWER)
    assert [b["holder_ref"] for b in good.body["blocks"]] == [REFS[2]]


async def test_listing_needs_an_operator_token(service: Service) -> None:
    for path in ("/v1/admin/blocked-cards", "/v1/admin/blocked-holders"):
        assert (await call(service, "GET", path, role=None)).status == 401
