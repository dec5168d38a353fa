"""`POST /v1/validations:batch`: each offline record decided again and settled once."""

from __future__ import annotations

import datetime as dt
import io
import json

from terminals_sim.card import tampered
from terminals_sim.signing import sign_headers
from tests.admin.client import VIEWER, call
from tests.offline.client import get_bundle
from tests.offline.records import BATCH_PATH, record, upload, upload_body
from tests.web.harness import Service, age_birth
from validator.ledger.reading import day_records
from validator.ledger.settlement import settle
from validator.state.store import Block

TZ8 = dt.timezone(dt.timedelta(hours=8))
BUS, BUS2, GATE = "T-BUS-K1-001", "T-BUS-K1-002", "T-GATE-S01-01"
UN = "0A1B2C3D"


async def _settled_count(service: Service, at: float) -> int:
    day = dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(hours=8))).date()
    return (await settle(service.store, day)).totals()["count"]


async def test_an_offline_accept_settles_once_however_often_it_is_uploaded(
        service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 600
    records = [record(holder.qr(at), at), record(holder.card.tap(BUS, int(at) + 5, UN), at + 5)]
    first = await upload(service, BUS, records)
    assert first.status == 200, first.raw
    assert [r["status"] for r in first.body["results"]] == ["applied", "applied"]
    assert [r["decision"] for r in first.body["results"]] == ["accept", "accept"]
    assert first.body["results"][0]["differs"] is False
    again = await upload(service, BUS, records)
    assert [r["status"] for r in again.body["results"]] == ["duplicate", "duplicate"]
    assert [r["txn_id"] for r in again.body["results"]] == \
        [r["txn_id"] for r in first.body["results"]]
    assert await _settled_count(service, at) == 2
    day = dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(hours=8))).date()
    ledgered = [r async for r in day_records(service.store, day)]
    assert [(r.mode, r.terminal_decision, r.differs) for r in ledgered] == \
        [("offline", "accept", False)] * 2
    assert ledgered[0].decided_at_unix == at and ledgered[0].uploaded_at is not None


async def test_a_qr_used_on_two_terminals_settles_once(service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 900
    qr = holder.qr(at)
    one = await upload(service, BUS, [record(qr, at)])
    two = await upload(service, BUS2, [record(qr, at + 20)])
    assert one.body["results"][0]["decision"] == "accept"
    second = two.body["results"][0]
    assert (second["decision"], second["reason"], second["fraud"], second["differs"]) == \
        ("deny", "offline_double_use", "offline_double_use", True)
    assert await _settled_count(service, at) == 1
    assert await service.metric(
        'validator_fraud_signals_total{kind="offline_double_use"}') == 1


async def test_a_cloned_cards_counter_on_two_terminals_is_double_use(service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 900
    clone = holder.card.clone()
    first = await upload(service, BUS, [record(holder.card.tap(BUS, int(at), UN), at)])
    second = await upload(service, BUS2, [record(clone.tap(BUS2, int(at) + 60, UN), at + 60)])
    assert first.body["results"][0]["decision"] == "accept"
    assert second.body["results"][0]["reason"] == "offline_double_use"


async def test_taps_uploaded_out_of_order_all_settle(service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 3000
    early = record(holder.card.tap(BUS, int(at), UN), at)
    late = record(holder.card.tap(BUS2, int(at) + 600, UN), at + 600)
    assert (await upload(service, BUS2, [late])).body["results"][0]["decision"] == "accept"
    reply = await upload(service, BUS, [early])
    assert reply.body["results"][0]["decision"] == "accept", reply.body
    # and a live tap after them continues from the highest counter
    live = await service.tap(BUS, holder)
    assert live.body["decision"] == "accept"
    assert await _settled_count(service, at) == 3


async def test_failed_evidence_and_a_block_the_terminal_did_not_know(service: Service) -> None:
    forged, blocked = service.holder(age_birth(30)), service.holder(age_birth(30))
    await service.store.put_block("card", blocked.card.card_no, Block("lost"))
    at = service.clock.now() - 1200
    tap = tampered(forged.card.tap(BUS, int(at), UN), cryptogram="0000000000000000")
    reply = await upload(service, BUS, [record(tap, at),
                                        record(blocked.qr(at + 1), at + 1)])
    results = reply.body["results"]
    assert [(r["reason"], r["fraud"], r["differs"]) for r in results] == [
        ("cryptogram_invalid", "bad_cryptogram", True), ("card_blocked", "blocked_card", True)]
    assert await _settled_count(service, at) == 0


async def test_bad_records_are_refused_by_index_and_the_rest_applied(
        service: Service) -> None:
    holder = service.holder(age_birth(30))
    now = service.clock.now()
    good = record(holder.qr(now - 60), now - 60)
    future = record(holder.qr(now + 400), now + 400)
    stale = record(holder.qr(now - 3 * 86400), now - 3 * 86400)
    no_id = record(holder.qr(now - 30), now - 30)
    del no_id["record_id"]
    bad_reason = record(holder.qr(now - 30), now - 30, decision="accept", reason="replayed")
    reply = await upload(service, BUS, [future, good, "x", stale, no_id, bad_reason])
    assert reply.status == 200
    results = reply.body["results"]
    assert [(r["index"], r["status"], r.get("error")) for r in results] == [
        (0, "rejected", "future"), (1, "applied", None), (2, "rejected", "invalid_record"),
        (3, "rejected", "past_deadline"), (4, "rejected", "invalid_record"),
        (5, "rejected", "invalid_record")]
    assert "record_id" in results[4]["detail"]
    # A record refused for another field still names itself, so the terminal knows which.
    assert [r["record_id"] for r in results[2:]] == \
        [None, stale["record_id"], None, bad_reason["record_id"]]
    assert reply.body["applied"] == 1 and reply.body["rejected"] == 5


async def test_a_record_id_sent_again_with_other_content_is_refused(service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 60
    first = record(holder.qr(at), at, record_id="rec-00000001")
    other = record(holder.qr(at + 1), at + 1, record_id="rec-00000001")
    await upload(service, BUS, [first])
    reply = await upload(service, BUS, [other])
    assert reply.body["results"][0]["error"] == "record_id_conflict"


async def test_a_batch_interrupted_and_sent_again_commits_each_record_once(
        service: Service) -> None:
    holders = [service.holder(age_birth(30)) for _ in range(6)]
    at = service.clock.now() - 1800
    records = [record(h.qr(at + i), at + i) for i, h in enumerate(holders)]
    await upload(service, BUS, records[:4])  # the link dropped after four
    reply = await upload(service, BUS, records)
    assert [r["status"] for r in reply.body["results"]] == ["duplicate"] * 4 + ["applied"] * 2
    assert await _settled_count(service, at) == 6


async def test_too_many_records_or_bytes_is_413_and_a_bad_signature_401(
        service: Service) -> None:
    too_many = await upload(service, BUS, [{}] * 501)
    assert too_many.status == 413 and too_many.body["error"] == "payload_too_large"
    body = b" " * (1 << 20) + b"{}"
    headers = sign_headers(BUS, service.secrets[BUS], "POST", BATCH_PATH, body,
                           int(service.clock.now()))
    async with service.session.post(service.url + BATCH_PATH, data=io.BytesIO(body),
                                    headers=headers) as resp:
        assert resp.status == 413
    client = service.terminal(BUS)
    client.secret = b"\0" * 32
    unsigned = await client.post(json.dumps({"records": []}).encode(),
                                 now=int(service.clock.now()), path="/v1/validations:batch")
    assert unsigned.status == 401 and unsigned.body["error"] == "unauthorized"
    not_a_batch = await upload_body(service, BUS, b'{"records": {}}')
    assert not_a_batch.status == 400 and "records" in not_a_batch.body["detail"]


async def test_a_days_settlement_is_final_after_the_upload_deadline(service: Service) -> None:
    day = dt.datetime.fromtimestamp(service.clock.now(), TZ8).date()
    answer = await call(service, "GET", f"/v1/settlement?date={day}", role=VIEWER)
    assert answer.body["final"] is False
    assert answer.body["uploads_until"] == \
        f"{day + dt.timedelta(days=3)}T00:00:00+08:00"  # 172,800 s after the day's end
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), TZ8).timestamp()
    service.clock.set(end + 172_800 - 1)
    assert (await call(service, "GET", f"/v1/settlement?date={day}",
                       role=VIEWER)).body["final"] is False
    service.clock.advance(1)
    holder = service.holder(age_birth(30))
    late = await upload(service, BUS, [record(holder.qr(end - 60), end - 60)])
    assert late.body["results"][0]["error"] == "past_deadline"
    assert (await call(service, "GET", f"/v1/settlement?date={day}",
                       role=VIEWER)).body["final"] is True


async def test_operators_see_bundle_fetches_uploads_and_differences(service: Service) -> None:
    await get_bundle(service, BUS)
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 300
    await upload(service, BUS, [record(holder.qr(at), at, decision="deny",
                                       reason="bundle_expired"), "x"])
    now = service.clock.now()
    assert await service.metric(
        f'validator_terminal_bundle_fetched_timestamp_seconds{{terminal="{BUS}"}}') == now
    assert await service.metric(
        f'validator_terminal_upload_timestamp_seconds{{terminal="{BUS}"}}') == now
    assert await service.metric('validator_offline_records_total{status="applied"}') == 1
    assert await service.metric('validator_offline_records_total{status="rejected"}') == 1
    assert await service.metric("validator_offline_differences_total") == 1


async def test_a_passenger_the_terminal_turned_away_is_not_settled(service: Service) -> None:
    holder = service.holder(age_birth(30))
    at = service.clock.now() - 600
    refused = await upload(service, BUS, [record(holder.qr(at), at, decision="deny",
                                                 reason="offline_allowance_reached")])
    result = refused.body["results"][0]
    assert (result["status"], result["decision"], result["reason"], result["differs"]) == \
        ("applied", "deny", "terminal_denied", True)
    assert await _settled_count(service, at) == 0
    day = dt.datetime.fromtimestamp(at, TZ8).date()
    [ledgered] = [r async for r in day_records(service.store, day)]
    assert (ledgered.decision, ledgered.terminal_reason) == \
        ("deny", "offline_allowance_reached")


async def test_a_result_s_fare_differs_and_content_as_the_page_reads_them(
        service: Service) -> None:
    at = service.clock.now() - 60
    # The terminal denied for want of a bundle; the service denies for another reason.
    denied = record({"type": "essc_qr", "qr": "ESSC1:not-base45"}, at, decision="deny",
                    reason="bundle_expired", record_id="rec-00000101")
    reply = await upload(service, BUS, [denied])
    result = reply.body["results"][0]
    assert (result["decision"], result["reason"], result["fare"], result["differs"]) == \
        ("deny", "malformed_credential", None, True)
    # The same record with its keys in another order is the same content...
    reordered = dict(reversed(list(denied.items())))
    again = (await upload(service, BUS, [reordered])).body["results"][0]
    assert (again["status"], again["txn_id"]) == ("duplicate", result["txn_id"])
    # ...an added field is not.
    extended = (await upload(service, BUS, [denied | {"note": 1}])).body["results"][0]
    assert extended["error"] == "record_id_conflict"
