"""Block lists over HTTP and from the command line: effective at the next scan, audited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from tests.admin.client import VIEWER, call
from tests.web.harness import ROOT, Service, age_birth
from validator import audit
from validator.state.redis import RedisStore

BUS = "T-BUS-K1-001"
CARD = "A00000042"
REF = "0123456789abcdef0123456789abcdef"


async def test_a_card_blocked_via_the_api_is_denied_at_the_next_scan(service: Service) -> None:
    holder = service.holder(age_birth(72))
    assert (await service.tap(BUS, holder)).body["decision"] == "accept"
    path = f"/v1/admin/blocked-cards/{holder.card.card_no}"
    put = await call(service, "PUT", path, json_body={"reason": "lost"})
    assert (put.status, put.body) == (200, {"card_no": holder.card.card_no, "reason": "lost",
                                            "until": None})
    denied = await service.tap(BUS, holder)
    assert (denied.body["decision"], denied.body["reason"]) == ("deny", "card_blocked")
    # the e-card is bound to the same card number (its `cn` claim)
    qr = await service.validate(BUS, holder.qr(service.clock.now()))
    assert qr.body["reason"] == "card_blocked"
    assert (await call(service, "DELETE", path)).status == 204
    assert (await service.tap(BUS, holder)).body["decision"] == "accept"


async def test_a_holder_block_covers_every_card_and_ends_after_until(service: Service) -> None:
    holder = service.holder(age_birth(30))
    path = f"/v1/admin/blocked-holders/{holder.ref}"
    put = await call(service, "PUT", path, json_body={"reason": "fraud", "until": "2026-12-02"})
    assert put.body == {"holder_ref": holder.ref, "reason": "fraud", "until": "2026-12-02"}
    assert (await service.tap(BUS, holder)).body["reason"] == "holder_blocked"
    service.clock.advance(86400)  # until is inclusive: the next day the block is over
    assert (await service.tap(BUS, holder)).body["decision"] == "accept"


async def test_get_put_delete_and_404(service: Service) -> None:
    for path, key, ident in ((f"/v1/admin/blocked-cards/{CARD}", "card_no", CARD),
                             (f"/v1/admin/blocked-holders/{REF}", "holder_ref", REF)):
        assert (await call(service, "GET", path, role=VIEWER)).status == 404
        missing = await call(service, "DELETE", path)
        assert missing.status == 404 and missing.body["error"] == "not_found"
        empty = await call(service, "PUT", path)  # no body: neither reason nor until
        assert empty.body == {key: ident, "reason": None, "until": None}
        changed = await call(service, "PUT", path, json_body={"until": "2027-01-31"})
        assert changed.body == {key: ident, "reason": None, "until": "2027-01-31"}
        got = await call(service, "GET", path, role=VIEWER)
        assert (got.status, got.body) == (200, changed.body)
        assert (await call(service, "DELETE", path)).status == 204
        assert (await call(service, "GET", path)).status == 404


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/v1/admin/blocked-cards/a00000042", {}, "card_no: expected 9 characters of [A-Z0-9]"),
    ("/v1/admin/blocked-cards/A0000004", {}, "card_no: expected 9 characters of [A-Z0-9]"),
    ("/v1/admin/blocked-holders/xyz", {}, "holder_ref: expected 32 lowercase hex characters"),
    (f"/v1/admin/blocked-cards/{CARD}", {"reason": 7},
     "reason: expected a non-empty string of at most 200 characters"),
    (f"/v1/admin/blocked-cards/{CARD}", {"reason": " "},
     "reason: expected a non-empty string of at most 200 characters"),
    (f"/v1/admin/blocked-cards/{CARD}", {"reason": "x" * 201},
     "reason: expected a non-empty string of at most 200 characters"),
    (f"/v1/admin/blocked-cards/{CARD}", {"until": "2027-02-29"},
     "until: '2027-02-29' is not a real date"),
    (f"/v1/admin/blocked-cards/{CARD}", {"until": "2026-W52-1"}, "until: expected YYYY-MM-DD"),
    (f"/v1/admin/blocked-holders/{REF}", {"until": "2026-12-01"},
     "until: 2026-12-01 is before today (2026-12-02); the block would never apply"),
    (f"/v1/admin/blocked-holders/{REF}", {"note": "x"}, "unknown field(s) ['note']"),
    (f"/v1/admin/blocked-holders/{REF}", ["lost"], "body: expected a JSON object"),
])
async def test_bad_block_input_is_400(service: Service, path: str, body: Any, detail: str) -> None:
    answer = await call(service, "PUT", path, json_body=body)
    assert (answer.status, answer.body) == (400, {"error": "invalid_request", "detail": detail})


async def test_bad_idents_on_get_and_delete_are_400(service: Service) -> None:
    for method in ("GET", "DELETE"):
        answer = await call(service, method, "/v1/admin/blocked-cards/lost-card")
        assert answer.status == 400


async def test_block_changes_are_audited_newest_first(service: Service) -> None:
    path = f"/v1/admin/blocked-cards/{CARD}"
    await call(service, "PUT", path, json_body={"reason": "lost"})
    await call(service, "PUT", path, json_body={"reason": "stolen", "until": "2027-01-01"})
    await call(service, "DELETE", path)
    await call(service, "DELETE", path)  # 404: nothing changed, nothing audited
    await call(service, "PUT", f"/v1/admin/blocked-holders/{REF}", json_body={})
    answer = await call(service, "GET", "/v1/admin/audit?limit=3", role=VIEWER)
    assert answer.status == 200
    entries = [{k: e[k] for k in ("who", "role", "action", "target", "old", "new")}
               for e in answer.body["entries"]]
    lost = {"reason": "lost", "until": None}
    stolen = {"reason": "stolen", "until": "2027-01-01"}
    assert entries == [
        {"who": "ops-admin", "role": "admin", "action": "holder_block.put", "target": REF,
         "old": None, "new": {"reason": None, "until": None}},
        {"who": "ops-admin", "role": "admin", "action": "card_block.delete", "target": CARD,
         "old": stolen, "new": None},
        {"who": "ops-admin", "role": "admin", "action": "card_block.put", "target": CARD,
         "old": lost, "new": stolen},
    ]
    everything = await call(service, "GET", "/v1/admin/audit", role=VIEWER)
    assert len(everything.body["entries"]) == 4


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1e3", "99999999999999999999"])
async def test_bad_audit_limit_is_400(service: Service, limit: str) -> None:
    answer = await call(service, "GET", f"/v1/admin/audit?limit={limit}", role=VIEWER)
    assert (answer.status, answer.body["detail"]) == (400, "limit: expected an integer 1-1000")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validator", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_block_changes_are_audited_as_cli(redis_url: str) -> None:
    added = _cli("blocks", "add", "card", CARD, "--reason", "lost", "--until", "2030-01-01",
                 "--store", redis_url)
    assert added.returncode == 0, added.stderr
    removed = _cli("blocks", "remove", "card", CARD, "--store", redis_url)
    assert removed.returncode == 0, removed.stderr
    again = _cli("blocks", "remove", "card", CARD, "--store", redis_url)
    assert again.returncode == 1  # was not blocked: no change, no entry

    async def read() -> list[dict[str, Any]]:
        store = RedisStore.from_url(redis_url)
        try:
            return await audit.read(store, 10)
        finally:
            await store.close()

    entries = asyncio.run(read())
    assert [(e["who"], e["role"], e["action"], e["target"], e["old"], e["new"])
            for e in entries] == [
        ("cli", "cli", "card_block.delete", CARD, {"reason": "lost", "until": "2030-01-01"}, None),
        ("cli", "cli", "card_block.put", CARD, None, {"reason": "lost", "until": "2030-01-01"}),
    ]
