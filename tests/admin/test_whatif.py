"""`POST /v1/policy/what-if`: a day replayed through candidate policies, checked by hand."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from tests.admin.client import VIEWER, call
from tests.web.harness import TZ, WED_10, Service, age_birth
from validator.ledger.whatif import birth_date_for
from validator.policy.engine import age_on

PATH = "/v1/policy/what-if"
K1, K1_B, S101 = "T-BUS-K1-001", "T-BUS-K1-002", "T-BUS-S101-001"
FIELDS = ("count_before", "count_after", "concession_fen_before", "concession_fen_after")


async def _day(service: Service) -> None:
    """The ledger of Wed 2026-12-02 the expectations below are computed from."""
    service.clock.set(dt.datetime(2026, 12, 2, 8, 10, tzinfo=TZ).timestamp())
    a = service.holder(age_birth(67))  # peak: bus.senior_65 makes no offer -> full, 5 times
    for _ in range(5):
        assert (await service.tap(K1, a)).body["rule"] == "bus.standard"
        service.clock.advance(60)
    service.clock.set(WED_10)
    for age, rule in ((59, "bus.standard"), (57, "bus.standard"), (62, "bus.senior_60")):
        assert (await service.tap(S101, service.holder(age_birth(age)))).body["rule"] == rule
    assert (await service.tap(K1, service.holder(age_birth(72)))).body["rule"] == \
        "bus.senior_70"
    g = service.holder(age_birth(40))  # blocked: denied before the policy, never replayed
    await call(service, "PUT", f"/v1/admin/blocked-cards/{g.card.card_no}", json_body={})
    assert (await service.tap(K1, g)).body["reason"] == "card_blocked"
    f = service.holder(age_birth(30))  # resident: free entry, then already_entered_today
    assert (await service.tap("T-GATE-S03-01", f)).body["rule"] == "spot.resident"
    assert (await service.tap("T-GATE-S03-02", f)).body["reason"] == "already_entered_today"
    h = service.holder(age_birth(40))  # disabled grade 2, with a companion 30 s later
    await call(service, "PUT", f"/v1/admin/holders/{h.ref}",
               json_body={"categories": [{"code": "disabled", "grade": 2}]})
    assert (await service.tap(K1_B, h)).body["rule"] == "bus.disabled"
    service.clock.advance(30)
    assert (await service.tap(K1_B, h, companion=True)).body["rule"] == "bus.companion"


def _rows(*rows: tuple[str, str, str, int, int, int, int]) -> list[dict[str, Any]]:
    return [dict(zip(("operator", "venue", "rule", *FIELDS), row, strict=True)) for row in rows]


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(r[name] for r in rows) for name in FIELDS}


def _rule(policy: dict[str, Any], kind: str, rule_id: str) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for r in policy[kind]["rule"] if r["id"] == rule_id)
    return rule


async def test_off_peak_free_rides_and_a_lower_half_fare_age(
    service: Service, policy_json: dict[str, Any]
) -> None:
    await _day(service)
    candidate = copy.deepcopy(policy_json)
    candidate["version"] = "v2-candidate"
    del _rule(candidate, "bus", "bus.senior_65")["no_offer"]  # free at peak too
    _rule(candidate, "bus", "bus.senior_60")["min_age"] = 58  # half fare from 58
    answer = await call(service, "POST", PATH, role=VIEWER,
                        json_body={"date": "2026-12-02", "policy": candidate})
    assert answer.status == 200, answer.body
    # A's five peak rides: now four free (the daily cap of 4, recomputed) and one full;
    # B (59) pays half; C (57), D (62), E (72), F and H are unchanged; G is not replayed.
    rows = _rows(
        ("OP-BUS-CITY", "bus:K1", "bus.companion", 1, 1, 200, 200),
        ("OP-BUS-CITY", "bus:K1", "bus.disabled", 1, 1, 200, 200),
        ("OP-BUS-CITY", "bus:K1", "bus.senior_65", 0, 4, 0, 800),
        ("OP-BUS-CITY", "bus:K1", "bus.senior_70", 1, 1, 200, 200),
        ("OP-BUS-CITY", "bus:K1", "bus.standard", 5, 1, 0, 0),
        ("OP-BUS-SUBURB", "bus:S101", "bus.senior_60", 1, 2, 150, 300),
        ("OP-BUS-SUBURB", "bus:S101", "bus.standard", 2, 1, 0, 0),
        ("OP-SPOT-S03", "spot:S03", "spot.resident", 1, 1, 6000, 6000),
    )
    assert answer.body == {
        "date": "2026-12-02", "policy_version": "v2-candidate", "replayed": 13, "skipped": 0,
        "rows": rows, "totals": _totals(rows),
    }
    assert answer.body["totals"] == {"count_before": 12, "count_after": 12,
                                     "concession_fen_before": 6750,
                                     "concession_fen_after": 7700}


async def test_no_resident_entries_and_companions_for_grade_1_only(
    service: Service, policy_json: dict[str, Any]
) -> None:
    await _day(service)
    candidate = copy.deepcopy(policy_json)
    candidate["spot"]["rule"] = [r for r in candidate["spot"]["rule"]
                                 if r["id"] != "spot.resident"]
    candidate["bus"]["companion"]["grades"] = [1]
    answer = await call(service, "POST", PATH, role=VIEWER,
                        json_body={"date": "2026-12-02", "policy": candidate})
    # F pays full at both gates (a full entry is always allowed, so the second scan,
    # denied live as already_entered_today, is accepted); H's companion is turned away.
    rows = _rows(
        ("OP-BUS-CITY", "bus:K1", "bus.companion", 1, 0, 200, 0),
        ("OP-BUS-CITY", "bus:K1", "bus.disabled", 1, 1, 200, 200),
        ("OP-BUS-CITY", "bus:K1", "bus.senior_70", 1, 1, 200, 200),
        ("OP-BUS-CITY", "bus:K1", "bus.standard", 5, 5, 0, 0),
        ("OP-BUS-SUBURB", "bus:S101", "bus.senior_60", 1, 1, 150, 150),
        ("OP-BUS-SUBURB", "bus:S101", "bus.standard", 2, 2, 0, 0),
        ("OP-SPOT-S03", "spot:S03", "spot.resident", 1, 0, 6000, 0),
        ("OP-SPOT-S03", "spot:S03", "spot.standard", 0, 2, 0, 0),
    )
    assert answer.body["rows"] == rows
    assert answer.body["totals"] == _totals(rows)


async def test_the_live_policy_changes_nothing(
    service: Service, policy_json: dict[str, Any]
) -> None:
    await _day(service)
    answer = await call(service, "POST", PATH, role=VIEWER,
                        json_body={"date": "2026-12-02", "policy": policy_json})
    for row in answer.body["rows"]:
        assert row["count_before"] == row["count_after"], row
        assert row["concession_fen_before"] == row["concession_fen_after"], row
    empty = await call(service, "POST", PATH, role=VIEWER,
                       json_body={"date": "2026-12-01", "policy": policy_json})
    assert (empty.body["rows"], empty.body["replayed"]) == ([], 0)


@pytest.mark.parametrize(("edit", "detail"), [
    (lambda d: d.pop("policy"), "policy: required, a policy in the schema of config/policy.toml"),
    (lambda d: d.pop("date"), "date: expected YYYY-MM-DD"),
    (lambda d: d.update(date="2026-02-30"), "date: '2026-02-30' is not a real date"),
    (lambda d: d.update(extra=1), "unknown field(s) ['extra']"),
    (lambda d: d["policy"]["bus"]["rule"][4].update(min_age="sixty"),
     "policy.bus.rule[4](bus.senior_60).min_age: Input should be a valid integer "
     "(got 'sixty')"),
    (lambda d: d["policy"].pop("version"), "policy.version: required, but missing"),
    (lambda d: d["policy"]["bus"]["rule"][3]["no_offer"][0].update(to="06:00"),
     "policy.bus.rule[3](bus.senior_65).no_offer[0].to: must be later than `from` "
     "(got 06:00:00)"),
    (lambda d: d["policy"]["spot"].update(rule=[]),
     "policy.spot.rule: Tuple should have at least 1 item after validation, not 0 (got [])"),
])
async def test_bad_what_if_input_is_400(
    service: Service, policy_json: dict[str, Any], edit: Any, detail: str
) -> None:
    body = {"date": "2026-12-02", "policy": copy.deepcopy(policy_json)}
    edit(body)
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=body)
    assert (answer.status, answer.body) == (400, {"error": "invalid_request", "detail": detail})


async def test_an_oversized_policy_is_413(service: Service) -> None:
    body = {"date": "2026-12-02", "policy": {"version": "x" * 300_000}}
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=body)
    assert (answer.status, answer.body["error"]) == (413, "payload_too_large")


def test_birth_dates_rebuilt_from_ages_give_those_ages_back() -> None:
    day = dt.date(2023, 1, 1)
    while day < dt.date(2029, 1, 1):
        for age in (0, 1, 3, 4, 59, 60, 64, 65, 69, 70, 101):
            assert age_on(birth_date_for(age, day), day) == age, (age, day)
        day += dt.timedelta(days=1)
    # a scan on 29 February: 28 February of a common year, not 1 March
    assert birth_date_for(3, dt.date(2028, 2, 29)) == dt.date(2025, 2, 28)
    assert birth_date_for(4, dt.date(2028, 2, 29)) == dt.date(2024, 2, 29)
