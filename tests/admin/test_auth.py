"""Role enforcement on every operator endpoint (protocol §5): 401, 403, and what viewers may do."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.admin.client import ADMIN, ADMIN_TOKEN, VIEWER, VIEWER_TOKEN, call
from tests.web.harness import Service

REF = "0123456789abcdef0123456789abcdef"
CARD = "A00000042"
EVALUATE = {"venue": "bus:K1", "at": "2026-12-02T10:00:00+08:00", "birth_date": "19500101"}
WHAT_IF_PATH = "/v1/policy/what-if"

# (method, path, body): every operator endpoint, with a body that would succeed.
ADMIN_CALLS: list[tuple[str, str, Any]] = [
    ("PUT", f"/v1/admin/holders/{REF}", {"categories": [{"code": "veteran"}]}),
    ("DELETE", f"/v1/admin/holders/{REF}", None),
    ("POST", "/v1/admin/holders:import", None),
    ("PUT", f"/v1/admin/blocked-cards/{CARD}", {"reason": "lost"}),
    ("DELETE", f"/v1/admin/blocked-cards/{CARD}", None),
    ("PUT", f"/v1/admin/blocked-holders/{REF}", {}),
    ("DELETE", f"/v1/admin/blocked-holders/{REF}", None),
]
VIEWER_CALLS: list[tuple[str, str, Any]] = [
    ("GET", f"/v1/admin/holders/{REF}", None),
    ("GET", f"/v1/admin/blocked-cards/{CARD}", None),
    ("GET", f"/v1/admin/blocked-holders/{REF}", None),
    ("GET", "/v1/admin/audit", None),
    ("GET", "/v1/settlement?date=2026-12-02", None),
    ("POST", "/v1/policy/evaluate", EVALUATE),
    ("POST", WHAT_IF_PATH, None),  # body built from config in the test
]
ALL_CALLS = ADMIN_CALLS + VIEWER_CALLS


def _ids(calls: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{m} {p.split('?')[0]}" for m, p, _ in calls]


async def _seed(service: Service) -> None:
    """Make every viewer GET find something, so that it answers 200."""
    for method, path, body in ADMIN_CALLS:
        if method == "PUT":
            assert (await call(service, method, path, json_body=body)).status == 200


@pytest.mark.parametrize(("method", "path", "body"), ALL_CALLS, ids=_ids(ALL_CALLS))
async def test_without_a_token_is_401(service: Service, method: str, path: str, body: Any) -> None:
    answer = await call(service, method, path, role=None, json_body=body)
    assert answer.status == 401
    assert answer.body == {"error": "unauthorized",
                           "detail": "an operator bearer token is required"}


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-token-we-issued", f"Basic {ADMIN_TOKEN}", "Bearer", ADMIN_TOKEN,
    f"Bearer {ADMIN_TOKEN}x", "Bearer ☃",
])
async def test_a_bad_token_is_401(service: Service, authorization: str) -> None:
    for method, path, body in ALL_CALLS:
        answer = await call(service, method, path, role=None, json_body=body,
                            headers={"Authorization": authorization})
        assert (answer.status, answer.body["error"]) == (401, "unauthorized"), (method, path)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS, ids=_ids(ADMIN_CALLS))
async def test_a_viewer_on_an_admin_endpoint_is_403(
    service: Service, method: str, path: str, body: Any
) -> None:
    answer = await call(service, method, path, role=VIEWER, json_body=body)
    assert answer.status == 403
    assert answer.body == {"error": "forbidden", "detail": "this call needs the admin role"}


@pytest.mark.parametrize(("method", "path", "body"), VIEWER_CALLS, ids=_ids(VIEWER_CALLS))
async def test_a_viewer_may_read_and_dry_run(
    service: Service, method: str, path: str, body: Any, policy_json: dict[str, Any]
) -> None:
    await _seed(service)
    if path == WHAT_IF_PATH:
        body = {"date": "2026-12-02", "policy": policy_json}
    answer = await call(service, method, path, role=VIEWER, json_body=body)
    assert answer.status == 200, answer.body


async def test_an_admin_may_read_too(service: Service) -> None:
    await _seed(service)
    answer = await call(service, "GET", f"/v1/admin/holders/{REF}", role=ADMIN)
    assert answer.status == 200


async def test_the_scheme_is_case_insensitive(service: Service) -> None:
    answer = await call(service, "GET", "/v1/admin/audit", role=None,
                        headers={"Authorization": f"bearer {VIEWER_TOKEN}"})
    assert answer.status == 200


async def test_tokens_never_reach_the_logs(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _seed(service)
    for method, path, body in ALL_CALLS:
        await call(service, method, path, role=VIEWER, json_body=body)
        await call(service, method, path, role=None, json_body=body,
                   headers={"Authorization": "Bearer wrong-token-value"})
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (ADMIN_TOKEN, VIEWER_TOKEN, "wrong-token-value"):
        assert secret not in text
    audit = await call(service, "GET", "/v1/admin/audit?limit=1000", role=VIEWER)
    assert ADMIN_TOKEN not in audit.text
    assert {e["who"] for e in audit.body["entries"]} == {"ops-admin"}
