"""The eligibility registry over HTTP: PUT/GET/DELETE a holder, streamed NDJSON imports."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from terminals_sim.card import make_ssn
from tests.admin.client import VIEWER, call
from tests.web.harness import Service, age_birth
from validator.holders.ref import holder_ref

REF = "0123456789abcdef0123456789abcdef"
PATH = f"/v1/admin/holders/{REF}"
VETERAN_AND_DISABLED = [{"code": "veteran", "until": "2027-12-31"},
                        {"code": "disabled", "grade": 1, "until": "2027-06-30"}]


async def test_put_get_delete_a_holder(service: Service) -> None:
    put = await call(service, "PUT", PATH, json_body={"categories": VETERAN_AND_DISABLED})
    assert put.status == 200
    assert put.body == {"holder_ref": REF, "categories": VETERAN_AND_DISABLED}
    got = await call(service, "GET", PATH, role=VIEWER)
    assert (got.status, got.body) == (200, put.body)
    # the GET representation can be sent back as it is
    again = await call(service, "PUT", PATH, json_body={**got.body, "categories": []})
    assert again.body == {"holder_ref": REF, "categories": []}
    deleted = await call(service, "DELETE", PATH)
    assert (deleted.status, deleted.text) == (204, "")
    assert (await call(service, "GET", PATH)).status == 404
    gone = await call(service, "DELETE", PATH)
    assert gone.status == 404
    assert gone.body == {"error": "not_found", "detail": f"holder {REF} is not in the registry"}


async def test_registry_categories_apply_to_the_next_scan(service: Service) -> None:
    holder = service.holder(age_birth(40))
    ref_path = f"/v1/admin/holders/{holder.ref}"
    assert (await service.tap("T-BUS-K1-001", holder)).body["rule"] == "bus.standard"
    await call(service, "PUT", ref_path, json_body={"categories": [{"code": "veteran"}]})
    assert (await service.tap("T-BUS-K1-001", holder)).body["rule"] == "bus.veteran"
    await call(service, "DELETE", ref_path)
    assert (await service.tap("T-BUS-K1-001", holder)).body["rule"] == "bus.standard"


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/v1/admin/holders/0123", {"categories": []},
     "holder_ref: expected 32 lowercase hex characters"),
    ("/v1/admin/holders/" + "A" * 32, {"categories": []},
     "holder_ref: expected 32 lowercase hex characters"),
    (PATH, {}, "categories: required (an empty list clears them)"),
    (PATH, {"categories": {}}, "categories: expected a list"),
    (PATH, {"categories": ["veteran"]}, "categories[0]: expected an object"),
    (PATH, {"categories": [{"code": "senior"}]},
     "categories[0].code: expected one of ('veteran', 'disabled')"),
    (PATH, {"categories": [{"code": "disabled"}]},
     "categories[0].grade: disabled needs a grade 1-4"),
    (PATH, {"categories": [{"code": "disabled", "grade": 5}]},
     "categories[0].grade: disabled needs a grade 1-4"),
    (PATH, {"categories": [{"code": "disabled", "grade": True}]},
     "categories[0].grade: disabled needs a grade 1-4"),
    (PATH, {"categories": [{"code": "veteran", "grade": 1}]},
     "categories[0].grade: only disabled has a grade"),
    (PATH, {"categories": [{"code": "veteran", "until": "2027-02-30"}]},
     "categories[0].until: '2027-02-30' is not a real date"),
    (PATH, {"categories": [{"code": "veteran", "until": "31/12/2027"}]},
     "categories[0].until: expected YYYY-MM-DD"),
    (PATH, {"categories": [{"code": "veteran", "until": "2026-W49-3"}]},
     "categories[0].until: expected YYYY-MM-DD"),
    (PATH, {"categories": [{"code": "veteran", "until": 20271231}]},
     "categories[0].until: expected YYYY-MM-DD"),
    (PATH, {"categories": [{"code": "veteran", "since": "2020-01-01"}]},
     "categories[0]: unknown field(s) ['since']"),
    (PATH, {"categories": [], "name": "Zhang San"}, "unknown field(s) ['name']"),
    (PATH, {"categories": [], "holder_ref": "f" * 32},
     "holder_ref: differs from the holder_ref of the path"),
    (PATH, [], "body: expected a JSON object"),
])
async def test_bad_holder_input_is_400(
    service: Service, path: str, body: Any, detail: str
) -> None:
    answer = await call(service, "PUT", path, json_body=body)
    assert (answer.status, answer.body) == (400, {"error": "invalid_request", "detail": detail})


async def test_a_body_that_is_not_json_is_400(service: Service) -> None:
    answer = await call(service, "PUT", PATH, data=b"{categories: []}")
    assert answer.status == 400
    assert answer.body["detail"].startswith("body is not JSON")


async def test_get_and_delete_check_the_ref_too(service: Service) -> None:
    for method in ("GET", "DELETE"):
        answer = await call(service, method, "/v1/admin/holders/nothex")
        assert answer.status == 400, method


# --- imports --------------------------------------------------------------------------


async def _chunked(data: bytes, size: int = 7919) -> AsyncIterator[bytes]:
    """Send the body in odd-sized chunks, so lines straddle chunk boundaries."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _import(service: Service, data: bytes) -> Any:
    async with service.session.post(
        service.url.rstrip("/") + "/v1/admin/holders:import", data=_chunked(data),
        headers={"Authorization": "Bearer admin-token-for-the-operator-api-tests",
                 "Content-Type": "application/x-ndjson"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_import_of_ten_thousand_lines_with_bad_and_blank_ones(service: Service) -> None:
    today = dt.date(2026, 12, 2)
    lines: list[bytes] = []
    expected_rejects: dict[int, str] = {}
    ssns: list[str] = []
    for i in range(10_500):
        number = len(lines) + 1
        if i % 1000 == 7:
            lines.append(b"")  # blank: ignored, but counted
        elif i % 1000 == 13:
            lines.append(b'{"holder_ref": "XYZ", "categories": []}')
            expected_rejects[number] = "holder_ref: expected 32 lowercase hex characters"
        elif i % 1000 == 21:
            lines.append(b"not json")
            expected_rejects[number] = "not a JSON object"
        elif i % 1000 == 34:
            lines.append(json.dumps({"ssn": "36990019500101001X", "categories": []}).encode())
            expected_rejects[number] = "ssn: the check character does not match"
        elif i % 2 == 0:
            ssn = make_ssn("369900", dt.date(1950, 1, 1) + dt.timedelta(days=i), i % 1000)
            ssns.append(ssn)
            lines.append(json.dumps({"ssn": ssn, "categories": [{"code": "veteran"}]}).encode())
        else:
            ref = f"{i:032x}"
            lines.append(json.dumps({"holder_ref": ref, "categories": [
                {"code": "disabled", "grade": 1 + i % 4, "until": "2027-06-30"}]}).encode())
    good = len(lines) - len(expected_rejects) - sum(1 for line in lines if not line)
    report = await _import(service, b"\r\n".join(lines) + b"\r\n")
    assert report["created"] == good and report["updated"] == 0
    assert {r["line"]: r["error"] for r in report["rejected"]}.keys() == expected_rejects.keys()
    for reject in report["rejected"]:
        assert reject["error"].startswith(expected_rejects[reject["line"]].split(":")[0])
    # a second run updates them all; SSN lines land on the holder_ref of the SSN
    again = await _import(service, b"\n".join(lines))
    assert (again["created"], again["updated"]) == (0, good)
    stored = await service.store.get_holder(holder_ref(service.pepper, ssns[0]))
    assert stored is not None and stored[0].code == "veteran"
    # SSNs are never echoed, nor stored in the audit log
    audit = await call(service, "GET", "/v1/admin/audit")
    for ssn in (*ssns[:50], "36990019500101001X"):
        assert ssn not in json.dumps(report) and ssn not in audit.text
    assert today  # the SSN birth dates above are all in the past of the service's today


async def test_import_line_numbers_with_long_and_unterminated_lines(service: Service) -> None:
    good = json.dumps({"holder_ref": REF, "categories": []}).encode()
    huge = b'{"holder_ref": "' + b"a" * 200_000 + b'", "categories": []}'
    body = b"\n".join([good, b"", huge, b"   ", good, huge]) + b"\n" + good  # no final \n
    report = await _import(service, body)
    assert report == {"created": 1, "updated": 2, "rejected": [
        {"line": 3, "error": "line longer than 65536 bytes"},
        {"line": 6, "error": "line longer than 65536 bytes"},
    ]}


@pytest.mark.parametrize(("line", "error"), [
    ({"categories": []}, "exactly one of holder_ref and ssn is required"),
    ({"holder_ref": REF, "ssn": "x", "categories": []},
     "exactly one of holder_ref and ssn is required"),
    ({"holder_ref": REF}, "categories: required"),
    ({"holder_ref": REF, "categories": [{"code": "disabled", "grade": 9}]},
     "categories[0].grade: disabled needs a grade 1-4"),
    ({"ssn": 12345, "categories": []}, "ssn: "),
    ([1, 2], "not a JSON object"),
])
async def test_each_bad_import_line_is_reported(
    service: Service, line: Any, error: str
) -> None:
    report = await _import(service, json.dumps(line).encode() + b"\n")
    assert report["created"] == report["updated"] == 0
    assert len(report["rejected"]) == 1 and report["rejected"][0]["line"] == 1
    assert report["rejected"][0]["error"].startswith(error)


async def test_an_empty_import_is_fine(service: Service) -> None:
    assert await _import(service, b"") == {"created": 0, "updated": 0, "rejected": []}


async def test_holder_changes_are_audited(service: Service) -> None:
    await call(service, "PUT", PATH, json_body={"categories": [{"code": "veteran"}]})
    await call(service, "PUT", PATH, json_body={"categories": VETERAN_AND_DISABLED})
    await call(service, "DELETE", PATH)
    await _import(service, json.dumps({"holder_ref": REF, "categories": []}).encode() + b"\n\n")
    entries = (await call(service, "GET", "/v1/admin/audit", role=VIEWER)).body["entries"]
    trimmed = [{k: e[k] for k in ("who", "role", "action", "target", "old", "new")}
               for e in entries]
    assert trimmed == [
        {"who": "ops-admin", "role": "admin", "action": "holder.import", "target": "holders",
         "old": None, "new": {"created": 1, "updated": 0, "rejected": 0, "blank": 1}},
        {"who": "ops-admin", "role": "admin", "action": "holder.delete", "target": REF,
         "old": VETERAN_AND_DISABLED, "new": None},
        {"who": "ops-admin", "role": "admin", "action": "holder.put", "target": REF,
         "old": [{"code": "veteran"}], "new": VETERAN_AND_DISABLED},
        {"who": "ops-admin", "role": "admin", "action": "holder.put", "target": REF,
         "old": None, "new": [{"code": "veteran"}]},
    ]
    # `at` is the service clock, in UTC
    assert {e["at"] for e in entries} == {"2026-12-02T02:00:00Z"}
    assert len({e["id"] for e in entries}) == 4
