"""The operator API under seeded random mutation: never a 5xx.

Every operator route gets a valid request, then many damaged copies: a JSON field
dropped, replaced by a value of another type, an extreme date, time or number, odd text;
a query value replaced likewise; a path parameter replaced by an odd segment. The
mutations come from a `random.Random` with a fixed seed, so a failure replays exactly.
Requests go over TCP to the real server; the store is the memory store, which keeps the
run to a few seconds.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.admin.client import ADMIN, call
from tests.web.harness import Service

REF = "0123456789abcdef0123456789abcdef"
CARD = "A12345678"
DAY = "2026-12-02"

EXTREME_TIMES = [
    "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-00:01", "9999-12-31T23:59:59.999999+14:00",
    "2026-02-29T10:00:00+08:00", "2026-12-02T24:00:00+08:00", "2026-12-02T10:00:00+24:00",
    "2026-12-02T10:00:00", "2026-12-02 10:00:00+08:00", "+12026-12-02T10:00:00+08:00",
]
EXTREME_DATES = ["9999-12-31", "0001-01-01", "0000-01-01", "10000-01-01", "2026-02-29",
                 "2028-02-29", "2026-13-01", "2026-12-32", "20261202", "2026-1-2", "-2026-12-02",
                 "٢٠٢٦-١٢-٠٢", "99991231", "00010101", "19000229"]
EXTREME_NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**63, -(2**63), 2**64 + 1, 10**30, 1.5, -0.0,
                              1e308, -1e308, True, False]
ODD_VALUES: list[Any] = [None, "", " ", "\u0000", "é" * 300, "x" * 70_000, [], {}, [None],
                         {"": None}, "NaN", "Infinity", "../../etc", "%00", "😀"]
ODD_SEGMENTS = ["%00", "%ff", "..", "%2e%2e", "a" * 5000, "0" * 32, "Z" * 32, "😀",
                REF.upper(), REF + "0", "A1234567", "a12345678", "%20", "-1", "9" * 40]


def _requests(policy: dict[str, Any]) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path template, query, body) of each operator route, valid as given."""
    evaluate = {"venue": "bus:K1", "at": "2026-12-02T10:00:00+08:00", "birth_date": "19500101",
                "categories": [{"code": "veteran"}], "resident": True, "companion": False,
                "usage": {"concession_rides_today": 1, "spot_entries_today": 0,
                          "entered_today": False, "companion_primary": False}}
    return [
        ("POST", "/v1/policy/evaluate", {}, evaluate),
        ("POST", "/v1/policy/what-if", {}, {"date": DAY, "policy": policy}),
        ("GET", "/v1/settlement", {"date": DAY, "operator": "K-BUS-CO"}, None),
        ("GET", "/v1/admin/holders/{ref}", {}, None),
        ("PUT", "/v1/admin/holders/{ref}", {},
         {"categories": [{"code": "veteran"}, {"code": "disabled", "grade": 2,
                                              "until": "2027-01-31"}]}),
        ("DELETE", "/v1/admin/holders/{ref}", {}, None),
        ("PUT", "/v1/admin/blocked-cards/{card}", {}, {"reason": "lost", "until": "2027-01-31"}),
        ("GET", "/v1/admin/blocked-cards/{card}", {}, None),
        ("DELETE", "/v1/admin/blocked-cards/{card}", {}, None),
        ("PUT", "/v1/admin/blocked-holders/{ref}", {}, {"reason": "fraud", "until": DAY}),
        ("GET", "/v1/admin/blocked-holders/{ref}", {}, None),
        ("GET", "/v1/admin/blocked-cards", {"limit": "10", "after": CARD}, None),
        ("GET", "/v1/admin/blocked-holders", {"limit": "10", "after": REF}, None),
        ("GET", "/v1/admin/audit", {"limit": "10"}, None),
    ]


def _odd(rng: random.Random) -> Any:
    pool = rng.choice([EXTREME_TIMES, EXTREME_DATES, EXTREME_NUMBERS, ODD_VALUES])
    return rng.choice(pool)


def _mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """`value` with one thing changed somewhere inside it."""
    if isinstance(value, dict) and value and depth < 4:
        key = rng.choice(sorted(value))
        choice = rng.randrange(4)
        if choice == 0:
            return {k: v for k, v in value.items() if k != key}
        if choice == 1:
            return {**value, key: _odd(rng)}
        if choice == 2:
            return {**value, rng.choice(["extra", "at", "until", "date", "grade"]): _odd(rng)}
        return {**value, key: _mutate_json(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and depth < 4:
        at = rng.randrange(len(value))
        return [*value[:at], _mutate_json(value[at], rng, depth + 1), *value[at + 1:]]
    return _odd(rng)


def _mutate(request: tuple[str, str, dict[str, str], Any], rng: random.Random
            ) -> tuple[str, str, Any]:
    method, template, query, body = request
    segments = {"ref": REF, "card": CARD}
    kind = rng.randrange(3)
    if kind == 0 and "{" in template:
        segments[rng.choice(["ref", "card"])] = rng.choice(ODD_SEGMENTS)
    elif kind == 1 and query:
        name = rng.choice(sorted(query))
        value = _odd(rng)
        query = {**query, name: value if isinstance(value, str) else repr(value)}
    elif body is not None:
        body = _mutate_json(body, rng)
    else:
        query = {**query, rng.choice(["date", "limit", "after", "until"]): str(_odd(rng))}
    path = template.format(**segments)
    if query:
        path += "?" + urlencode(query, quote_via=quote)
    return method, path, body


@pytest.mark.parametrize("service", ["memory"], indirect=True)
async def test_mutated_operator_requests_never_get_a_5xx(
    service: Service, policy_json: dict[str, Any]
) -> None:
    rng = random.Random(20261202)
    requests = _requests(policy_json)
    seen: dict[int, int] = {}
    for _ in range(700):
        method, path, body = _mutate(rng.choice(requests), rng)
        answer = await call(service, method, path, role=ADMIN, json_body=body)
        assert answer.status < 500, (method, path, body, answer.status, answer.text[:300])
        seen[answer.status] = seen.get(answer.status, 0) + 1
    assert {200, 400} <= set(seen), seen  # the mix reached both sides of validation


@pytest.mark.parametrize("service", ["memory"], indirect=True)
@pytest.mark.parametrize("at", EXTREME_TIMES)
async def test_an_extreme_evaluation_time_is_a_400(service: Service, at: str) -> None:
    body = {"venue": "bus:K1", "at": at, "birth_date": "00010101"}
    answer = await call(service, "POST", "/v1/policy/evaluate", json_body=body)
    assert answer.status in (200, 400), answer.text
    if answer.status == 400:
        assert answer.body["error"] == "invalid_request"
        assert answer.body["detail"].startswith("at:"), answer.body


@pytest.mark.parametrize("service", ["memory"], indirect=True)
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
async def test_the_first_and_last_date_are_answered_without_a_5xx(
    service: Service, policy_json: dict[str, Any], day: str
) -> None:
    for method, path, body in [
        ("POST", "/v1/policy/what-if", {"date": day, "policy": policy_json}),
        ("GET", f"/v1/settlement?date={day}", None),
        ("PUT", f"/v1/admin/holders/{REF}",
         {"categories": [{"code": "veteran", "until": day}]}),
        ("PUT", f"/v1/admin/blocked-cards/{CARD}", {"until": day}),
        ("PUT", f"/v1/admin/blocked-holders/{REF}", {"until": day}),
        ("POST", "/v1/policy/evaluate",
         {"venue": "spot:S01", "at": f"{day}T12:00:00+08:00", "birth_date": "00010101"}),
    ]:
        answer = await call(service, method, path, json_body=body)
        assert answer.status < 500, (method, path, answer.text[:300])
        if answer.status >= 400:
            assert answer.body["error"] == "invalid_request", answer.body
