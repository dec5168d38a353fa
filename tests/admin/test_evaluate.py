"""`POST /v1/policy/evaluate`: every worked example of policy.md, and bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.admin.client import VIEWER, call
from tests.web.harness import Service

PATH = "/v1/policy/evaluate"


def _birth(age: int, on: str) -> str:
    """A birth date (YYYYMMDD) that makes the holder `age` on local date `on` (mid-year)."""
    day = dt.date.fromisoformat(on[:10])
    return f"{day.year - age - (1 if day.month < 6 else 0)}0615"


WED_0810 = "2026-12-02T08:10:00+08:00"
SAT_0810 = "2026-12-05T08:10:00+08:00"
WED_1000 = "2026-12-02T10:00:00+08:00"  # "any" / "open": a working day, off-peak, open
HOLIDAY_1000 = "2026-10-01T10:00:00+08:00"
WED_1800 = "2026-12-02T18:00:00+08:00"
DISABLED_2 = [{"code": "disabled", "grade": 2}]
DISABLED_3 = [{"code": "disabled", "grade": 3}]

# policy.md "Worked examples", row for row: (venue, when, holder, expected) as written
# there, then the request that states that row. `expected` is parsed by `_expected`.
WORKED_EXAMPLES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("bus:K1", "Wed 2026-12-02 08:10", "age 67, resident", "accept, full, 200",
     {"at": WED_0810, "age": 67, "resident": True}),
    ("bus:K1", "Sat 2026-12-05 08:10", "age 67", "accept, free, 0",
     {"at": SAT_0810, "age": 67}),
    ("bus:K1", "Wed 2026-12-02 10:00", "age 67", "accept, free, 0",
     {"at": WED_1000, "age": 67}),
    ("bus:S101", "any", "age 62", "accept, half, 150",
     {"at": WED_1000, "age": 62}),
    ("bus:K1", "Wed 08:10", "age 67, veteran", "accept, free, 0",
     {"at": WED_0810, "age": 67, "categories": [{"code": "veteran"}]}),
    ("bus:K1", "any", "age 72, 5th ride today", "accept, full, 200",
     {"at": WED_1000, "age": 72, "usage": {"concession_rides_today": 4}}),
    ("bus:K1", "any", "age 40, disabled grade 2, companion within 120 s",
     "accept, free, 0 (`bus.companion`)",
     {"at": WED_1000, "age": 40, "categories": DISABLED_2, "companion": True,
      "usage": {"companion_primary": True}}),
    ("bus:K1", "any", "age 40, disabled grade 3, companion", "deny, `companion_not_allowed`",
     {"at": WED_1000, "age": 40, "categories": DISABLED_3, "companion": True,
      "usage": {"companion_primary": True}}),
    ("spot:S01", "2026-10-01 10:00 (holiday)", "age 30, resident", "accept, full, 12000",
     {"at": HOLIDAY_1000, "age": 30, "resident": True}),
    ("spot:S03", "Wed 2026-12-02 10:00", "age 30, resident", "accept, free, 0",
     {"at": WED_1000, "age": 30, "resident": True}),
    ("spot:S03", "same day, second scan", "age 30, resident", "deny, `already_entered_today`",
     {"at": WED_1000, "age": 30, "resident": True, "usage": {"entered_today": True}}),
    ("spot:S03", "2026-12-02 18:00", "anyone", "deny, `venue_closed`",
     {"at": WED_1800, "age": 30}),
    ("spot:S12", "any open hour", "age 61, non-resident", "accept, half, 1500",
     {"at": WED_1000, "age": 61, "resident": False}),
    ("spot:S05", "open", "anyone, 8000 entries already today", "deny, `capacity_reached`",
     {"at": WED_1000, "age": 30, "usage": {"spot_entries_today": 8000}}),
]


def _expected(text: str) -> dict[str, Any]:
    """'accept, free, 0 (`bus.companion`)' / 'deny, `reason`' → the fields to compare."""
    parts = [p.strip() for p in text.split(",")]
    if parts[0] == "deny":
        return {"decision": "deny", "reason": parts[1].strip("`")}
    amount, _, rule = parts[2].partition(" ")
    out: dict[str, Any] = {"decision": "accept", "reason": "ok", "class": parts[1],
                           "amount_fen": int(amount)}
    if rule:
        out["rule"] = rule.strip("(`)")
    return out


@pytest.mark.parametrize(("venue", "when", "holder", "expected", "stated"), WORKED_EXAMPLES,
                         ids=[f"{v} {w} {h}" for v, w, h, _, _ in WORKED_EXAMPLES])
async def test_worked_example(
    service: Service, venue: str, when: str, holder: str, expected: str, stated: dict[str, Any]
) -> None:
    request = {k: v for k, v in stated.items() if k != "age"}
    request.update(venue=venue, birth_date=_birth(stated["age"], stated["at"]))
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=request)
    assert answer.status == 200, answer.body
    body, want = answer.body, _expected(expected)
    assert "request_id" not in body and "txn_id" not in body
    assert (body["decision"], body["reason"]) == (want["decision"], want["reason"])
    assert body["age"] == stated["age"]
    assert set(body["message"]) == {"zh", "en"}
    if want["decision"] == "accept":
        assert body["fare"]["class"] == want["class"]
        assert body["fare"]["amount_fen"] == want["amount_fen"]
        assert any(o["rule"] == body["rule"] and o["fare"] == body["fare"]
                   for o in body["offers"])
        if "rule" in want:
            assert body["rule"] == want["rule"]
    else:
        assert "fare" not in body and body["rule"] is None and body["categories"] == []


async def test_the_answer_explains_every_offer(service: Service) -> None:
    request = {"venue": "bus:K1", "at": WED_0810, "birth_date": _birth(67, WED_0810),
               "categories": [{"code": "veteran", "until": "2027-12-31"}], "resident": True}
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=request)
    assert answer.body == {
        "decision": "accept", "reason": "ok",
        "fare": {"class": "free", "amount_fen": 0, "standard_fen": 200},
        "rule": "bus.veteran", "categories": ["veteran"],
        "message": {"zh": "退役军人免费乘车", "en": "Veteran: free ride"},
        "offers": [
            {"rule": "bus.veteran", "fare": {"class": "free", "amount_fen": 0,
                                             "standard_fen": 200}, "categories": ["veteran"]},
            {"rule": "bus.standard", "fare": {"class": "full", "amount_fen": 200,
                                              "standard_fen": 200}, "categories": []},
        ],
        "age": 67,
    }


async def test_an_expired_category_is_ignored(service: Service) -> None:
    request = {"venue": "bus:K1", "at": WED_1000, "birth_date": "19900101",
               "categories": [{"code": "veteran", "until": "2026-12-01"}]}
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=request)
    assert answer.body["rule"] == "bus.standard"


async def test_a_dry_run_touches_no_state(service: Service) -> None:
    for _, _, _, _, stated in WORKED_EXAMPLES:
        request = {k: v for k, v in stated.items() if k != "age"}
        request.update(venue="spot:S03", birth_date=_birth(stated["age"], stated["at"]))
        assert (await call(service, "POST", PATH, role=VIEWER, json_body=request)).status == 200
    for day in ("2026-12-02", "2026-12-05", "2026-10-01"):
        assert await service.store.ledger_read(dt.date.fromisoformat(day)) == []
    assert await service.store.audit_read() == []


BASE = {"venue": "bus:K1", "at": WED_1000, "birth_date": "19500101"}


@pytest.mark.parametrize(("change", "detail"), [
    ({"venue": None}, 'venue: required, e.g. "bus:K1" or "spot:S01"'),
    ({"venue": "bus:K99"}, "venue: 'bus:K99' is no route or spot of the city"),
    ({"at": None}, 'at: required, an RFC 3339 date-time with an offset, '
                   'e.g. "2026-12-02T08:10:00+08:00"'),
    ({"at": "2026-12-02"}, 'at: required, an RFC 3339 date-time with an offset, '
                           'e.g. "2026-12-02T08:10:00+08:00"'),
    ({"at": "2026-12-02T10:00:00"}, "at: the offset (Z or ±HH:MM) is required"),
    ({"at": "2026-12-32T10:00:00+08:00"},
     "at: '2026-12-32T10:00:00+08:00' is not an RFC 3339 date-time"),
    ({"birth_date": None}, 'birth_date: required, YYYYMMDD, e.g. "19500101"'),
    ({"birth_date": "1950-01-01"}, 'birth_date: required, YYYYMMDD, e.g. "19500101"'),
    ({"birth_date": 19500101}, 'birth_date: required, YYYYMMDD, e.g. "19500101"'),
    ({"birth_date": "19510229"}, "birth_date: 19510229 is not a real date"),
    ({"birth_date": "20261203"},
     "birth_date: 20261203 is after the local date of `at` (2026-12-02)"),
    ({"categories": [{"code": "disabled", "grade": 0}]},
     "categories[0].grade: disabled needs a grade 1-4"),
    ({"categories": "veteran"}, "categories: expected a list"),
    ({"resident": "yes"}, "resident: expected true or false"),
    ({"companion": 1}, "companion: expected true or false"),
    ({"usage": []}, "usage: expected an object"),
    ({"usage": {"rides": 1}}, "usage: unknown field(s) ['rides']"),
    ({"usage": {"concession_rides_today": -1}},
     "usage.concession_rides_today: expected an integer 0-10000000"),
    ({"usage": {"spot_entries_today": 1.5}},
     "usage.spot_entries_today: expected an integer 0-10000000"),
    ({"usage": {"entered_today": "no"}}, "usage.entered_today: expected true or false"),
    ({"name": "x"}, "unknown field(s) ['name']"),
])
async def test_bad_evaluate_input_is_400(
    service: Service, change: dict[str, Any], detail: str
) -> None:
    request = {**BASE, **change}
    request = {k: v for k, v in request.items() if v is not None}
    answer = await call(service, "POST", PATH, role=VIEWER, json_body=request)
    assert (answer.status, answer.body) == (400, {"error": "invalid_request", "detail": detail})


async def test_a_body_that_is_not_an_object_is_400(service: Service) -> None:
    for data in (b"[]", b"", b"{", "\"☃\"".encode()):
        answer = await call(service, "POST", PATH, role=VIEWER, data=data)
        assert answer.status == 400, data
