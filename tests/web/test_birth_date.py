"""A trusted e-card whose `bd` is after the scan's local date (protocol §2): a deny with
`malformed_credential` on either port, and the same answer again on a retry."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.web.harness import TZ, Service, request_id

GATE = "T-GATE-S03-01"
BUS = "T-BUS-K1-001"


@pytest.mark.parametrize("terminal", [GATE, BUS])
async def test_ecard_born_after_the_scan_date_is_malformed(
    service: Service, terminal: str
) -> None:
    today = dt.datetime.fromtimestamp(service.clock.now(), TZ).date()
    holder = service.holder(today + dt.timedelta(days=1))
    rid = request_id()
    credential, scanned_at = holder.qr(service.clock.now()), service.scanned_at()
    first = await service.validate(terminal, credential, request_id=rid, scanned_at=scanned_at)
    assert first.status == 200, first.body
    assert (first.body["decision"], first.body["reason"]) == ("deny", "malformed_credential")
    service.clock.advance(2)  # the terminal's retry, signed afresh
    again = await service.validate(terminal, credential, request_id=rid, scanned_at=scanned_at)
    assert (again.status, again.body) == (200, first.body)


async def test_ecard_born_on_the_scan_date_is_decided(service: Service) -> None:
    today = dt.datetime.fromtimestamp(service.clock.now(), TZ).date()
    holder = service.holder(today)
    reply = await service.validate(BUS, holder.qr(service.clock.now()))
    assert reply.status == 200
    assert reply.body["decision"] == "accept", reply.body  # age 0: a child's fare
