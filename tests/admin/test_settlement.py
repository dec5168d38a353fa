"""`GET /v1/settlement` and `python -m validator settlement`: JSON, CSV, and exact totals."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.admin.client import VIEWER, call
from tests.web.harness import CONFIG_DIR, ROOT, Service, age_birth
from validator.web.appkeys import SETTINGS

COLUMNS = ["operator", "venue", "rule", "fare_class", "count", "standard_fen", "charged_fen",
           "concession_fen"]
EXPECTED_ROWS = [
    ["OP-BUS-CITY", "bus:K1", "bus.senior_70", "free", 1, 200, 0, 200],
    ["OP-BUS-CITY", "bus:K1", "bus.standard", "full", 1, 200, 200, 0],
    ["OP-BUS-SUBURB", "bus:S101", "bus.senior_60", "half", 1, 300, 150, 150],
    ["OP-SPOT-S01", "spot:S01", "spot.resident", "free", 1, 12000, 0, 12000],
    ["OP-SPOT-S03", "spot:S03", "spot.resident", "free", 1, 6000, 0, 6000],
]


async def _small_day(service: Service) -> None:
    """Five accepts over four operators and one deny, at Wed 2026-12-02 10:00."""
    for terminal, age in (("T-BUS-K1-001", 72), ("T-BUS-K1-002", 40),
                          ("T-BUS-S101-001", 62), ("T-GATE-S01-01", 30)):
        assert (await service.tap(terminal, service.holder(age_birth(age)))).status == 200
    resident = service.holder(age_birth(30))
    assert (await service.tap("T-GATE-S03-01", resident)).body["decision"] == "accept"
    assert (await service.tap("T-GATE-S03-02", resident)).body["decision"] == "deny"


async def test_a_day_as_json(service: Service) -> None:
    await _small_day(service)
    answer = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER)
    assert answer.status == 200
    assert answer.body == {
        "date": "2026-12-02",
        "rows": [dict(zip(COLUMNS, row, strict=True)) for row in EXPECTED_ROWS],
        "totals": {"count": 5, "standard_fen": 18700, "charged_fen": 350,
                   "concession_fen": 18350},
        # offline records of the day may come until its end plus the upload deadline
        "final": False, "uploads_until": "2026-12-05T00:00:00+08:00",
    }


async def test_a_day_as_csv_and_per_operator(service: Service) -> None:
    await _small_day(service)
    answer = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER,
                        headers={"Accept": "text/csv"})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "settlement-2026-12-02.csv" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows == [COLUMNS, *[[str(v) for v in row] for row in EXPECTED_ROWS]]
    one = await call(service, "GET", "/v1/settlement?date=2026-12-02&operator=OP-BUS-CITY",
                     role=VIEWER)
    assert [r["rule"] for r in one.body["rows"]] == ["bus.senior_70", "bus.standard"]
    assert one.body["totals"] == {"count": 2, "standard_fen": 400, "charged_fen": 200,
                                  "concession_fen": 200}


async def test_other_days_and_operators_are_empty(service: Service) -> None:
    await _small_day(service)
    for query in ("date=2026-12-01", "date=2026-12-02&operator=OP-NOBODY"):
        answer = await call(service, "GET", f"/v1/settlement?{query}", role=VIEWER)
        assert answer.body["rows"] == []
        assert answer.body["totals"] == {"count": 0, "standard_fen": 0, "charged_fen": 0,
                                         "concession_fen": 0}


@pytest.mark.parametrize(("query", "detail"), [
    ("", "date: required, YYYY-MM-DD"),
    ("?date=2026-12-32", "date: '2026-12-32' is not a real date"),
    ("?date=20261202", "date: expected YYYY-MM-DD"),
    ("?date=2026-W49-3", "date: expected YYYY-MM-DD"),
    ("?date=2026-12-02&operator=op-bus", "operator: expected an operator id, "
                                         "3-40 characters of [A-Z0-9-]"),
])
async def test_bad_settlement_queries_are_400(service: Service, query: str, detail: str) -> None:
    answer = await call(service, "GET", f"/v1/settlement{query}", role=VIEWER)
    assert (answer.status, answer.body) == (400, {"error": "invalid_request", "detail": detail})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validator", "settlement", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("service", ["redis"], indirect=True)
async def test_the_cli_prints_the_same_report(service: Service) -> None:
    await _small_day(service)
    store = service.app[SETTINGS].store_url
    api = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER)
    printed = _cli("--date", "2026-12-02", "--store", store, "--config", str(CONFIG_DIR))
    assert printed.returncode == 0, printed.stderr
    cli_doc = json.loads(printed.stdout)
    # the service's clock is the test's; the command's is the machine's, long past the
    # day's upload deadline
    assert cli_doc.pop("final") is True and api.body.pop("final") is False
    assert cli_doc == api.body
    api_csv = await call(service, "GET", "/v1/settlement?date=2026-12-02&operator=OP-SPOT-S03",
                         role=VIEWER, headers={"Accept": "text/csv"})
    printed = _cli("--date", "2026-12-02", "--store", store, "--operator", "OP-SPOT-S03",
                   "--csv")
    assert printed.returncode == 0, printed.stderr
    assert list(csv.reader(io.StringIO(printed.stdout))) == \
        list(csv.reader(io.StringIO(api_csv.text)))


def test_the_cli_rejects_a_bad_date_and_the_memory_store() -> None:
    bad = _cli("--date", "02/12/2026", "--store", "redis://127.0.0.1:1/0")
    assert bad.returncode == 2 and "--date" in bad.stderr
    memory = _cli("--date", "2026-12-02", "--store", "memory")
    assert memory.returncode == 2 and "memory store" in memory.stderr
