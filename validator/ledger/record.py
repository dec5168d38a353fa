"""The ledger record: one per decision, accept or deny, appended atomically with it.

Settlement and the policy what-if are computed from these records alone, so a record
carries every input the policy used (age, active categories with grades, resident,
venue, local time, companion) and every output (decision, reason, rule, fare).
It never carries an SSN, a name, a birth date or a token: the holder is `holder_ref`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson

from validator.values import value

LEDGER_SCHEMA = 1


@value
class LedgerCategory:
    code: str
    grade: int | None = None


@value
class LedgerRecord:
    txn_id: str
    request_id: str
    terminal: str
    operator: str
    venue: str  # "bus:K1" | "spot:S01"
    credential: str  # "essc_qr" | "ssc_card"
    decision: str  # "accept" | "deny"
    reason: str
    scanned_at: str  # as the terminal sent it (RFC 3339)
    decided_at: str  # server clock, local time, RFC 3339 with offset
    decided_at_unix: float
    policy_version: str
    companion: bool
    holder_ref: str | None = None  # None when the credential never yielded a holder
    card_no: str | None = None
    age: int | None = None
    categories: tuple[LedgerCategory, ...] = ()  # registry categories active that day
    resident: bool | None = None
    rule: str | None = None
    rule_categories: tuple[str, ...] = ()  # codes the winning rule relied on
    fare_class: str | None = None
    amount_fen: int | None = None
    standard_fen: int | None = None  # the venue's standard fare, also on deny
    fraud: str | None = None  # fraud signal kind, if any
    schema: int = LEDGER_SCHEMA
    # "online", or "offline": decided by the terminal alone and uploaded later
    # (protocol §8); `decided_at` is then the terminal's decision time, the one this
    # record was decided again at, and these say what the terminal decided and when
    # the service heard of it. `differs`: the terminal's decision or reason is not this.
    mode: str = "online"
    terminal_decision: str | None = None
    terminal_reason: str | None = None
    uploaded_at: str | None = None
    differs: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes) -> LedgerRecord:
        raw: dict[str, Any] = orjson.loads(data)
        raw["categories"] = tuple(LedgerCategory(**c) for c in raw.get("categories", ()))
        raw["rule_categories"] = tuple(raw.get("rule_categories", ()))
        return cls(**raw)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
