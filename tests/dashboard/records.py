"""Ledger records for the board's tests: an accepted free ride unless told otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.web.harness import TZ, WED_10
from validator.ledger.record import LedgerRecord

REF = "0123456789abcdef0123456789abcdef"


def record(at: float = WED_10, **kw: Any) -> LedgerRecord:
    """A ledger record with sensible defaults: an accepted free bus ride on K1."""
    base: dict[str, Any] = dict(
        txn_id="t", request_id="r", terminal="T-BUS-K1-001", operator="OP-BUS-CITY",
        venue="bus:K1", credential="ssc_card", decision="accept", reason="ok",
        scanned_at="", decided_at=dt.datetime.fromtimestamp(at, TZ).isoformat(),
        decided_at_unix=at, policy_version="1", companion=False, holder_ref=REF,
        card_no="A12345678", age=71, rule="bus.senior_70", rule_categories=("senior",),
        fare_class="free", amount_fen=0, standard_fen=200)
    base.update(kw)
    return LedgerRecord(**base)


def deny(reason: str, at: float = WED_10, **kw: Any) -> LedgerRecord:
    return record(at, decision="deny", reason=reason, rule=None, rule_categories=(),
                  fare_class=None, amount_fen=None, **kw)
