"""The reference terminal decides offline as the service decides the same records.

Each case takes a real bundle from a real service, decides on the simulator's offline
terminal at the terminal's clock, uploads the records, and compares every answer with
the service's: the decision, the reason and the fare, and `differs` false. The policy
rows are docs/policy.md's worked examples (capacity excepted: it is not seen offline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from terminals_sim.ecard import tampered, to_qr
from terminals_sim.offline_bundle import OfflineBundle, load_bundle_keys, open_bundle
from terminals_sim.offline_terminal import LocalDecision, OfflineTerminal
from tests.offline.client import get_bundle
from tests.offline.records import upload_body
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR, TZ, Holder, Service, age_birth
from validator.policy.types import Category
from validator.settings import Settings
from validator.state.store import Block

UN = "0A1B2C3D"
WED_0810 = dt.datetime(2026, 12, 2, 8, 10, tzinfo=TZ)
WED_1000 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)


@pytest.fixture
async def service(keys_dir: Path) -> AsyncIterator[Service]:
    async with serving(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir)) as service:
        yield service


@dataclass(frozen=True)
class Case:
    name: str
    terminal: str
    at: dt.datetime
    age: int
    steps: tuple[tuple[str, int], ...]  # (kind, seconds after `at`)
    expect: tuple[tuple[str, str, int | None], ...]  # (decision, reason, amount_fen)
    region: str = "369900"
    alg: str = "EdDSA"
    categories: tuple[Category, ...] = field(default=())
    block: str | None = None


BUS, S101, S01 = "T-BUS-K1-001", "T-BUS-S101-001", "T-GATE-S01-01"
S03, S12 = "T-GATE-S03-01", "T-GATE-S12-01"
ACCEPT_FREE, DENY = ("accept", "ok", 0), ("deny",)

CASES = [
    # docs/policy.md, worked examples
    Case("bus, 67, working-day peak: full", BUS, WED_0810, 67, (("qr", 0),),
         (("accept", "ok", 200),)),
    Case("bus, 67, Saturday 08:10: free", BUS, dt.datetime(2026, 12, 5, 8, 10, tzinfo=TZ),
         67, (("qr", 0),), (ACCEPT_FREE,)),
    Case("bus, 67, off-peak: free, by card", BUS, WED_1000, 67, (("tap", 0),),
         (ACCEPT_FREE,)),
    Case("suburban bus, 62: half", S101, WED_1000, 62, (("tap", 0),),
         (("accept", "ok", 150),)),
    Case("bus, 67, veteran at peak: free", BUS, WED_0810, 67, (("qr", 0),), (ACCEPT_FREE,),
         categories=(Category("veteran"),)),
    Case("bus, 72: the fifth ride is full", BUS, WED_1000, 72,
         tuple(("qr", 60 * i) for i in range(5)), (ACCEPT_FREE,) * 4 + (("accept", "ok", 200),)),
    Case("bus, disabled 2: a companion rides free", BUS, WED_1000, 40,
         (("qr", 0), ("companion", 30)), (ACCEPT_FREE, ACCEPT_FREE),
         categories=(Category("disabled", 2),)),
    Case("bus, disabled 3: no companion", BUS, WED_1000, 40, (("qr", 0), ("companion", 30)),
         (ACCEPT_FREE, ("deny", "companion_not_allowed", None)),
         categories=(Category("disabled", 3),)),
    Case("spot on a holiday, resident 30: full", S01,
         dt.datetime(2026, 10, 1, 10, 0, tzinfo=TZ), 30, (("qr", 0),),
         (("accept", "ok", 12000),)),
    Case("spot, resident 30: free, then already entered", S03, WED_1000, 30,
         (("qr", 0), ("qr", 60)), (ACCEPT_FREE, ("deny", "already_entered_today", None))),
    Case("spot after hours: closed", S03, dt.datetime(2026, 12, 2, 18, 0, tzinfo=TZ), 30,
         (("qr", 0),), (("deny", "venue_closed", None),)),
    Case("spot, 61, non-resident: half", S12, WED_1000, 61, (("qr", 0),),
         (("accept", "ok", 1500),), region="110100"),
    # the other algorithms, and what a terminal refuses on its own
    Case("an ES256 e-card", BUS, WED_1000, 30, (("qr", 0),), (("accept", "ok", 200),),
         alg="ES256"),
    Case("an SM2 e-card", BUS, WED_1000, 30, (("qr", 0),), (("accept", "ok", 200),),
         alg="SM2"),
    Case("a forged QR signature", BUS, WED_1000, 30, (("forged", 0),),
         (("deny", "bad_signature", None),)),
    Case("a QR shown 90 s after it was made", BUS, WED_1000, 30, (("stale", 0),),
         (("deny", "qr_expired", None),)),
    Case("a card blocked before the bundle", BUS, WED_1000, 30, (("tap", 0), ("qr", 10)),
         (("deny", "card_blocked", None),) * 2, block="card"),
    Case("a holder blocked before the bundle", BUS, WED_1000, 30, (("qr", 0),),
         (("deny", "holder_blocked", None),), block="holder"),
    Case("an expired card", BUS, WED_1000, 30, (("expired-tap", 0),),
         (("deny", "card_expired", None),)),
    Case("two taps of one card", BUS, WED_1000, 30,
         (("tap", 0), ("tap", 60)), (("accept", "ok", 200),) * 2),
]


async def _terminal(service: Service, terminal_id: str) -> OfflineTerminal:
    status, body, _ = await get_bundle(service, terminal_id)
    assert status == 200
    bundle = OfflineBundle()
    bundle.apply(open_bundle(body, load_bundle_keys(service.keys_dir)))
    return OfflineTerminal(terminal_id, bundle)


def _step(terminal: OfflineTerminal, holder: Holder, kind: str, now: int) -> LocalDecision:
    if kind in ("tap", "expired-tap"):
        return terminal.tap(holder.card.tap(terminal.terminal_id, now, UN), now)
    if kind == "forged":
        return terminal.scan_qr(to_qr(tampered(holder.phone.level2(now))), now)
    gen_time = now - 90 if kind == "stale" else now
    return terminal.scan_qr(holder.phone.qr(gen_time), now, companion=kind == "companion")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_terminal_decides_as_the_service_does(service: Service, case: Case) -> None:
    at = int(case.at.timestamp())
    service.clock.set(at - 120)
    expires = "20260101" if case.steps[0][0] == "expired-tap" else "20301231"
    holder = service.holder(age_birth(case.age, at), region=case.region, alg=case.alg,
                            expires=expires)
    if case.categories:
        await service.store.put_holders([(holder.ref, case.categories)])
    if case.block == "card":
        await service.store.put_block("card", holder.card.card_no, Block("lost"))
    elif case.block == "holder":
        await service.store.put_block("holder", holder.ref, Block("fraud"))
    terminal = await _terminal(service, case.terminal)
    local = [_step(terminal, holder, kind, at + offset) for kind, offset in case.steps]
    assert [(d.decision, d.reason, d.fare["amount_fen"] if d.fare else None)
            for d in local] == list(case.expect)
    service.clock.set(at + 900)
    reply = await upload_body(service, case.terminal, terminal.batch_body())
    assert reply.status == 200, reply.raw
    results = reply.body["results"]
    assert [(r["status"], r["decision"], r["reason"], r["fare"], r["differs"])
            for r in results] == [("applied", d.decision, d.reason, d.fare, False)
                                  for d in local]


async def test_a_counter_seen_before_is_refused_on_the_terminal(service: Service) -> None:
    holder = service.holder(age_birth(30))
    terminal = await _terminal(service, BUS)
    now = int(service.clock.now())
    clone = holder.card.clone()
    first = terminal.tap(holder.card.tap(BUS, now, UN), now)
    again = terminal.tap(clone.tap(BUS, now + 5, UN), now + 5)
    moved_on = terminal.tap(holder.card.tap(BUS, now + 6, UN), now + 6)
    older = terminal.tap(holder.card.clone(atc=0).tap(BUS, now + 7, UN), now + 7)
    assert (first.reason, again.reason, moved_on.reason, older.reason) == \
        ("ok", "replayed", "ok", "card_clone_suspected")


async def test_a_cards_offline_allowance_is_enforced_per_day(service: Service) -> None:
    holder = service.holder(age_birth(30))
    terminal = await _terminal(service, BUS)
    now = int(service.clock.now())
    allowance = terminal.bundle.fixed["card_allowance"]
    reasons = [terminal.tap(holder.card.tap(BUS, now + i, UN), now + i).reason
               for i in range(allowance + 1)]
    assert reasons == ["ok"] * allowance + ["offline_allowance_reached"]
    tomorrow = now + 86400 - 3600  # still within the bundle's not-after
    assert terminal.local(tomorrow).date() != terminal.local(now).date()
    assert terminal.tap(holder.card.tap(BUS, tomorrow, UN), tomorrow).reason == "ok"


async def test_a_qr_seen_twice_is_replayed_and_past_not_after_nothing_is_accepted(
        service: Service) -> None:
    holder = service.holder(age_birth(30))
    terminal = await _terminal(service, BUS)
    now = int(service.clock.now())
    qr = holder.phone.qr(now)
    assert terminal.scan_qr(qr, now).reason == "ok"
    assert terminal.scan_qr(qr, now + 10).reason == "replayed"
    late = terminal.bundle.exp + 1
    refused = terminal.scan_qr(holder.phone.qr(late), late)
    assert (refused.decision, refused.reason) == ("deny", "bundle_expired")
    assert [r["terminal_decision"]["reason"] for r in terminal.records] == \
        ["ok", "replayed", "bundle_expired"]
    record = terminal.records[-1]
    assert record["scanned_at"] == \
        dt.datetime.fromtimestamp(late, TZ).isoformat()
    assert set(record) == {"record_id", "scanned_at", "credential", "terminal_decision"}
    assert record["credential"]["type"] == "essc_qr"
