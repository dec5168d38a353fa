"""Settlement reconciles exactly with the validations a client sent itself.

Thousands of validations go through the real HTTP API — card taps and e-card QRs, bus
and spots, three times of day (peak, off-peak, after closing), veterans, disabled
holders with companions, residents and visitors, blocked cards, unknown keys and
repeat entries — and the test tallies the accepted decisions from the responses alone.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import random
from collections import Counter, defaultdict
from typing import Any

from terminals_sim.terminal import Reply
from tests.admin.client import VIEWER, call
from tests.web.harness import CONFIG_DIR, TZ, Holder, Service, age_birth
from validator.config_folder import load_config

TERMINALS = load_config(CONFIG_DIR).terminals
SCAN_TERMINALS = ["T-BUS-K1-001", "T-BUS-K1-002", "T-BUS-K2-001", "T-BUS-S101-001",
                  "T-BUS-S102-001", "T-GATE-S01-01", "T-GATE-S03-01", "T-GATE-S03-02",
                  "T-GATE-S12-01"]
AGES = [8, 30, 45, 59, 61, 63, 66, 68, 71, 85]
PHASES = [(8, 10), (10, 0), (18, 0)]  # peak, off-peak, spots closed
HOLDERS = 240
SCANS_PER_PHASE = 3
COLUMNS = ["operator", "venue", "rule", "fare_class", "count", "standard_fen", "charged_fen",
           "concession_fen"]

Key = tuple[str, str, str, str]


class Tally:
    """The client's own books: accepted decisions summed by settlement key."""

    def __init__(self) -> None:
        self.sums: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.reasons: Counter[str] = Counter()
        self.sent = 0

    def add(self, terminal_id: str, reply: Reply) -> None:
        assert reply.status == 200, reply.body
        self.sent += 1
        body = reply.body
        self.reasons[body["reason"]] += 1
        if body["decision"] != "accept":
            return
        terminal = TERMINALS[terminal_id]
        fare = body["fare"]
        sums = self.sums[(terminal.operator, terminal.venue, body["rule"], fare["class"])]
        sums[0] += 1
        sums[1] += fare["standard_fen"]
        sums[2] += fare["amount_fen"]

    def rows(self, operator: str | None = None) -> list[dict[str, Any]]:
        return [dict(zip(COLUMNS, [*key, n, std, paid, std - paid], strict=True))
                for key, (n, std, paid) in sorted(self.sums.items())
                if operator is None or key[0] == operator]


async def _population(service: Service, rng: random.Random) -> list[tuple[Holder, bool]]:
    """Holders, with registry categories and blocks set through the API; (holder, by_qr)."""
    people = []
    for i in range(HOLDERS):
        visitor = i % 10 == 9  # a visitor's card cannot be verified here: use the e-card
        holder = service.holder(age_birth(rng.choice(AGES)),
                                region="110100" if visitor else "369900")
        kind = i % 12
        if kind in (1, 2):
            categories = [{"code": "veteran"}] if kind == 1 else \
                [{"code": "disabled", "grade": rng.choice([1, 2, 3])}]
            answer = await call(service, "PUT", f"/v1/admin/holders/{holder.ref}",
                                json_body={"categories": categories})
            assert answer.status == 200
        if kind == 3:
            await call(service, "PUT", f"/v1/admin/blocked-cards/{holder.card.card_no}",
                       json_body={"reason": "lost"})
        people.append((holder, visitor or i % 7 == 0))
    return people


async def _scan(service: Service, terminal: str, holder: Holder, by_qr: bool,
                companion: bool = False) -> Reply:
    if by_qr:
        return await service.validate(terminal, holder.qr(service.clock.now()),
                                      companion=companion)
    return await service.tap(terminal, holder, companion=companion)


async def _day(service: Service, people: list[tuple[Holder, bool]], rng: random.Random,
               tally: Tally) -> None:
    slots = asyncio.Semaphore(48)

    async def one(holder: Holder, by_qr: bool, plan: list[tuple[str, bool]]) -> None:
        async with slots:  # one holder's scans in order; holders concurrently
            for terminal, companion in plan:
                tally.add(terminal, await _scan(service, terminal, holder, by_qr))
                if companion:
                    tally.add(terminal, await _scan(service, terminal, holder, by_qr, True))

    for hour, minute in PHASES:
        service.clock.set(dt.datetime(2026, 12, 2, hour, minute, tzinfo=TZ).timestamp())
        plans = [[(rng.choice(SCAN_TERMINALS), rng.random() < 0.2)
                  for _ in range(SCANS_PER_PHASE)] for _ in people]
        await asyncio.gather(*(one(h, qr, plan) for (h, qr), plan in zip(people, plans,
                                                                             strict=True)))


async def test_settlement_reconciles_with_thousands_of_validations(service: Service) -> None:
    rng = random.Random(20261202)
    people = await _population(service, rng)
    tally = Tally()
    await _day(service, people, rng, tally)
    assert tally.sent >= 2000
    # the mix really is mixed: fares of every class, and denies of several kinds
    assert {key[3] for key in tally.sums} == {"free", "half", "full"}
    for reason in ("ok", "card_blocked", "venue_closed", "already_entered_today",
                   "companion_not_allowed"):
        assert tally.reasons[reason] > 0, tally.reasons
    rules = {key[2] for key in tally.sums}
    assert {"bus.veteran", "bus.disabled", "bus.companion", "bus.senior_60", "bus.senior_65",
            "bus.senior_70", "bus.standard", "spot.resident", "spot.standard"} <= rules, rules

    answer = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER)
    assert answer.status == 200
    assert answer.body["rows"] == tally.rows()
    rows = tally.rows()
    assert answer.body["totals"] == {
        name: sum(r[name] for r in rows)
        for name in ("count", "standard_fen", "charged_fen", "concession_fen")}
    assert answer.body["totals"]["count"] == tally.reasons["ok"]

    as_csv = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER,
                        headers={"Accept": "text/csv"})
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [{k: (v if k in COLUMNS[:4] else int(v)) for k, v in r.items()} for r in parsed] \
        == rows
    for operator in ("OP-BUS-SUBURB", "OP-SPOT-S03"):
        one = await call(service, "GET", f"/v1/settlement?date=2026-12-02&operator={operator}",
                         role=VIEWER)
        assert one.body["rows"] == tally.rows(operator)
    # every validation left exactly one ledger record, read back in pages
    records, after = 0, None
    while page := await service.store.ledger_read(dt.date(2026, 12, 2), after, 500):
        records, after = records + len(page), page[-1][0]
    assert records == tally.sent
