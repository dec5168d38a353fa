"""POST /v1/validations end to end: real server, real signatures, both stores."""

from __future__ import annotations

import asyncio
import datetime as dt

from tests.web.harness import Service, age_birth, request_id
from validator.policy.types import Category
from validator.state.store import Block

BUS = "T-BUS-K1-001"
BUS2 = "T-BUS-K1-002"
GATE = "T-GATE-S03-01"
GATE2 = "T-GATE-S03-02"


async def test_resident_enters_spot_free_by_qr(service: Service) -> None:
    holder = service.holder(age_birth(30))
    reply = await service.validate(GATE, holder.qr(service.clock.now()))
    assert reply.status == 200
    assert reply.body["decision"] == "accept"
    assert reply.body["reason"] == "ok"
    assert reply.body["fare"] == {"class": "free", "amount_fen": 0, "standard_fen": 6000}
    assert reply.body["rule"] == "spot.resident"
    assert reply.body["categories"] == ["resident"]
    assert set(reply.body["message"]) == {"zh", "en"}
    assert len(reply.body["txn_id"]) >= 16


async def test_second_entry_same_day_is_denied_across_card_and_phone(service: Service) -> None:
    holder = service.holder(age_birth(30))
    first = await service.tap(GATE, holder)
    assert first.body["decision"] == "accept", first.body
    second = await service.validate(GATE2, holder.qr(service.clock.now()))
    assert (second.body["decision"], second.body["reason"]) == ("deny", "already_entered_today")


async def test_senior_rides_free_off_peak_with_es256_ecard(service: Service) -> None:
    holder = service.holder(age_birth(67), alg="ES256")
    reply = await service.validate(BUS, holder.qr(service.clock.now()))
    assert reply.body["decision"] == "accept", reply.body
    assert reply.body["rule"] == "bus.senior_65"
    assert reply.body["fare"]["amount_fen"] == 0
    assert reply.body["categories"] == ["senior"]


async def test_retry_gets_identical_bytes_and_counts_once(service: Service) -> None:
    holder = service.holder(age_birth(30))
    client = service.terminal(GATE)
    body = client.body(holder.qr(service.clock.now()), service.scanned_at())
    first = await client.post(body, now=int(service.clock.now()))
    service.clock.advance(5)  # a retry is re-signed with a fresh timestamp
    again = await client.post(body, now=int(service.clock.now()))
    assert first.status == again.status == 200
    assert first.raw == again.raw
    entries = await service.store.ledger_read(dt.date(2026, 12, 2))
    assert len(entries) == 1


async def test_same_request_id_with_other_body_is_409(service: Service) -> None:
    holder = service.holder(age_birth(30))
    rid = request_id()
    first = await service.validate(GATE, holder.qr(service.clock.now()), request_id=rid)
    assert first.status == 200
    other = await service.validate(GATE, holder.qr(service.clock.now()), request_id=rid)
    assert other.status == 409
    assert other.body["error"] == "request_id_conflict"


async def test_screenshot_replayed_on_second_gate(service: Service) -> None:
    holder = service.holder(age_birth(30))
    qr = holder.qr(service.clock.now())
    assert (await service.validate(BUS, qr)).body["decision"] == "accept"
    replay = await service.validate(BUS2, qr)
    assert (replay.body["decision"], replay.body["reason"]) == ("deny", "replayed")


async def test_same_qr_at_many_terminals_at_once_is_accepted_once(service: Service) -> None:
    holder = service.holder(age_birth(72))
    qr = holder.qr(service.clock.now())
    terminals = [BUS, BUS2, "T-BUS-K2-001", "T-BUS-K2-002", "T-BUS-K3-001", "T-BUS-K3-002"]
    replies = await asyncio.gather(*(service.validate(t, qr) for t in terminals * 3))
    decisions = sorted(r.body["reason"] for r in replies)
    assert decisions.count("ok") == 1
    assert decisions.count("replayed") == len(replies) - 1


async def test_concurrent_taps_of_one_card_pass_once(service: Service) -> None:
    holder = service.holder(age_birth(72))
    now = int(service.clock.now())
    # Two readers read the same counter value (a cloned card tapped at the same instant).
    taps = [holder.card.clone().tap(t, now, "0A1B2C3D") for t in (BUS, BUS2) * 4]
    replies = await asyncio.gather(*(
        service.validate(t, tap) for t, tap in zip((BUS, BUS2) * 4, taps, strict=True)))
    reasons = [r.body["reason"] for r in replies]
    assert reasons.count("ok") == 1, reasons
    assert set(reasons) <= {"ok", "replayed"}


async def test_card_counter_replay_and_rollback(service: Service) -> None:
    holder = service.holder(age_birth(72))
    clone = holder.card.clone()  # keeps the counter where it was
    assert (await service.tap(BUS, holder)).body["reason"] == "ok"
    assert (await service.tap(BUS, holder)).body["reason"] == "ok"
    now = int(service.clock.now())
    rolled_back = await service.validate(BUS, clone.tap(BUS, now, "0A1B2C3D"))
    assert rolled_back.body["reason"] == "card_clone_suspected"
    metrics = await (await service.session.get(service.url + "/metrics")).text()
    assert 'validator_fraud_signals_total{kind="card_clone"} 1.0' in metrics
    # Two good taps: one speculative commit each, no snapshot. The rolled-back tap: its
    # speculative commit fails the counter guard, then a snapshot and a second commit.
    assert 'validator_store_round_trip_seconds_count{op="snapshot"} 1.0' in metrics
    assert 'validator_store_round_trip_seconds_count{op="commit"} 4.0' in metrics


async def test_expired_card_is_denied_and_still_moves_the_counter(service: Service) -> None:
    holder = service.holder(age_birth(40), expires="20261201")
    now = int(service.clock.now())
    tap = holder.card.tap(BUS, now, "0A1B2C3D")
    first = await service.validate(BUS, tap)
    assert first.body["reason"] == "card_expired"
    again = await service.validate(BUS, tap)  # same counter again: still expiry first
    assert again.body["reason"] == "card_expired"
    snap_atc = await _atc(service, holder.card.card_id)
    assert snap_atc == tap["atc"]


async def _atc(service: Service, card_id: str) -> int | None:
    from validator.state.store import SnapshotQuery

    snap = await service.store.snapshot(SnapshotQuery(
        terminal_id=BUS, request_id="probe-0000", local_date=dt.date(2026, 12, 2),
        card_id=card_id))
    return snap.atc_high


async def test_blocked_card_denies_card_and_its_ecard_but_not_the_replacement(
    service: Service,
) -> None:
    holder = service.holder(age_birth(72))
    await service.store.put_block("card", holder.card.card_no, Block(reason="lost"))
    assert (await service.tap(BUS, holder)).body["reason"] == "card_blocked"
    assert (await service.validate(BUS, holder.qr(service.clock.now()))).body["reason"] == \
        "card_blocked"
    replacement = service.holder(holder.birth, ssn=holder.ssn)  # same person, new card
    assert replacement.ref == holder.ref
    assert replacement.card.card_no != holder.card.card_no
    assert (await service.tap(BUS, replacement)).body["reason"] == "ok"


async def test_block_until_yesterday_no_longer_applies(service: Service) -> None:
    holder = service.holder(age_birth(72))
    await service.store.put_block("holder", holder.ref, Block(until=dt.date(2026, 12, 2)))
    assert (await service.tap(BUS, holder)).body["reason"] == "holder_blocked"
    await service.store.put_block("holder", holder.ref, Block(until=dt.date(2026, 12, 1)))
    assert (await service.tap(BUS, holder)).body["reason"] == "ok"


async def test_veteran_from_registry_rides_free_at_peak(service: Service) -> None:
    service.clock.set(dt.datetime(2026, 12, 2, 8, 10, tzinfo=dt.UTC).timestamp() - 8 * 3600)
    holder = service.holder(age_birth(67, service.clock.now()))
    plain = await service.validate(BUS, holder.qr(service.clock.now()))
    assert (plain.body["rule"], plain.body["fare"]["amount_fen"]) == ("bus.standard", 200)
    await service.store.put_holders([(holder.ref, (Category("veteran"),))])
    vet = await service.validate(BUS, holder.qr(service.clock.now()))
    assert (vet.body["rule"], vet.body["categories"]) == ("bus.veteran", ["veteran"])


async def test_fifth_senior_ride_pays_full_fare(service: Service) -> None:
    holder = service.holder(age_birth(72))
    rules = []
    for _ in range(5):
        reply = await service.validate(BUS, holder.qr(service.clock.now()))
        rules.append((reply.body["rule"], reply.body["fare"]["amount_fen"]))
    assert rules == [("bus.senior_70", 0)] * 4 + [("bus.standard", 200)]


async def test_companion_rides_once_after_primary(service: Service) -> None:
    holder = service.holder(age_birth(40))
    await service.store.put_holders([(holder.ref, (Category("disabled", grade=2),))])
    assert (await service.tap(BUS, holder)).body["rule"] == "bus.disabled"
    service.clock.advance(30)
    companion = await service.tap(BUS, holder, companion=True)
    assert (companion.body["rule"], companion.body["categories"]) == \
        ("bus.companion", ["disabled"])
    second = await service.tap(BUS, holder, companion=True)
    assert second.body["reason"] == "companion_not_allowed"


async def test_companion_window_closes_after_120_s_and_on_other_terminal(
    service: Service,
) -> None:
    holder = service.holder(age_birth(40))
    await service.store.put_holders([(holder.ref, (Category("disabled", grade=1),))])
    assert (await service.tap(BUS, holder)).body["decision"] == "accept"
    other = await service.tap(BUS2, holder, companion=True)
    assert other.body["reason"] == "companion_not_allowed"
    service.clock.advance(121)
    late = await service.tap(BUS, holder, companion=True)
    assert late.body["reason"] == "companion_not_allowed"


async def test_clock_skew_is_a_deny(service: Service) -> None:
    holder = service.holder(age_birth(30))
    reply = await service.validate(BUS, holder.qr(service.clock.now()),
                                   scanned_at=service.scanned_at(-301))
    assert (reply.status, reply.body["reason"]) == (200, "clock_skew")
    assert reply.body["rule"] is None and reply.body["categories"] == []
    assert "fare" not in reply.body


async def test_every_decision_is_in_the_ledger_without_personal_data(service: Service) -> None:
    holder = service.holder(age_birth(72))
    await service.tap(BUS, holder)
    await service.validate(BUS, {"type": "essc_qr", "qr": "ESSC1:garbage"})
    entries = await service.store.ledger_read(dt.date(2026, 12, 2))
    assert len(entries) == 2
    from validator.ledger.record import LedgerRecord

    first, second = (LedgerRecord.from_json(raw) for _, raw in entries)
    assert (first.decision, first.rule, first.age, first.holder_ref) == \
        ("accept", "bus.senior_70", 72, holder.ref)
    assert (first.operator, first.venue, first.standard_fen) == ("OP-BUS-CITY", "bus:K1", 200)
    assert (second.decision, second.reason, second.holder_ref) == \
        ("deny", "malformed_credential", None)
    for _, raw in entries:
        assert holder.ssn.encode() not in raw
        assert holder.birth.strftime("%Y%m%d").encode() not in raw
