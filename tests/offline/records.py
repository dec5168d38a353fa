"""Offline records and batches as a terminal uploads them (protocol §8.4), for tests."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from terminals_sim.terminal import Reply
from tests.web.harness import TZ, Service

BATCH_PATH = "/v1/validations:batch"


def record(credential: dict[str, Any], at: float, *, decision: str = "accept",
           reason: str = "ok", record_id: str | None = None,
           companion: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "record_id": record_id or os.urandom(9).hex(),
        "scanned_at": dt.datetime.fromtimestamp(at, TZ).isoformat(),
        "credential": credential,
        "terminal_decision": {"decision": decision, "reason": reason}}
    if companion:
        doc["companion"] = True
    return doc


async def upload(service: Service, terminal_id: str, records: list[Any]) -> Reply:
    body = json.dumps({"records": records}).encode()
    return await upload_body(service, terminal_id, body)


async def upload_body(service: Service, terminal_id: str, body: bytes) -> Reply:
    return await service.terminal(terminal_id).post(body, now=int(service.clock.now()),
                                                    path=BATCH_PATH)
