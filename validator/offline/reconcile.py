"""Settling what a terminal decided alone: an uploaded batch, a record at a time.

Each record is decided again by the same pipeline as a live scan (`decide.py`), as of
the terminal's decision time, and committed with the same atomic rules; the ledger
keeps the terminal's decision beside the service's. A record the batch cannot take
(malformed, dated in the future, past the upload deadline, or a record id used before
with other content) is refused with its index and reason while the rest are applied.
Records are idempotent per (terminal, record id): a batch sent again, whole or after an
interruption, counts each record once. docs/protocol.md §8.4 is the wire format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from validator.clock import Clock
from validator.credentials.verifier import Presented
from validator.decide import CLOCK_SKEW_S, Decider, Outcome, ValidationRequest
from validator.ledger.record import LedgerRecord
from validator.offline.config import OfflineConfig
from validator.offline_context import OfflineContext
from validator.reasons import FRAUD_KINDS, Reason
from validator.values import value

__all__ = ["KEEP_MARGIN_S", "TERMINAL_ONLY_REASONS", "Reconciler", "RecordError",
           "UploadedRecord"]

# Reasons a terminal may give that the service never does (protocol §8.3).
TERMINAL_ONLY_REASONS = frozenset({"bundle_expired", "offline_allowance_reached"})
# A record's token and idempotency entry are kept this much beyond the upload deadline:
# a record dated up to CLOCK_SKEW_S ahead of the service's clock is taken, so its last
# upload may come that much later than the deadline counted from now.
KEEP_MARGIN_S = 2 * CLOCK_SKEW_S


@value
class UploadedRecord:
    """One record of a batch, in the schema (the web layer parsed it)."""

    record_id: str
    scanned_at: dt.datetime  # the terminal's decision time, timezone-aware
    scanned_at_text: str
    credential: Presented
    companion: bool
    terminal_decision: str  # "accept" | "deny"
    terminal_reason: str
    body_sha256: str  # of the record's JSON with sorted keys: its idempotency


@value
class RecordError:
    """A record the batch refused; `error` is a code, `detail` a text safe to show."""

    error: str
    detail: str
    record_id: str | None = None  # the record's own id, where it had a usable one


class Reconciler:
    """Applies batches for the terminals of the registry."""

    def __init__(self, *, decider: Decider, clock: Clock, offline: OfflineConfig,
                 observe: Callable[[LedgerRecord], None] | None = None) -> None:
        self._decider, self._clock, self._offline = decider, clock, offline
        self._keep_s = offline.upload_deadline_s + KEEP_MARGIN_S
        self._observe = observe

    async def apply(self, *, terminal_id: str, operator: str, venue: str,
                    records: Sequence[UploadedRecord | RecordError]) -> dict[str, Any]:
        """Every record in order; the answer's `results` has one entry per record."""
        results = []
        for index, record in enumerate(records):
            results.append({"index": index, **await self._one(
                terminal_id, operator, venue, record)})
        counts = {status: sum(r["status"] == status for r in results)
                  for status in ("applied", "duplicate", "rejected")}
        return {"results": results, **counts}

    async def _one(self, terminal_id: str, operator: str, venue: str,
                   record: UploadedRecord | RecordError) -> dict[str, Any]:
        if isinstance(record, RecordError):
            return _rejected(record.record_id, record)
        late = self._timing(record.scanned_at.timestamp())
        if late is not None:
            return _rejected(record.record_id, late)
        offline = OfflineContext(record.terminal_decision, record.terminal_reason,
                                 self._keep_s)
        outcome = await self._decider.validate(ValidationRequest(
            terminal_id=terminal_id, operator=operator, venue=venue,
            request_id=record.record_id, scanned_at=record.scanned_at,
            scanned_at_text=record.scanned_at_text, credential=record.credential,
            companion=record.companion, body_sha256=record.body_sha256, offline=offline))
        if outcome.conflict:
            return _rejected(record.record_id, RecordError(
                "record_id_conflict", "this record_id was uploaded with other content"))
        if outcome.record is not None and self._observe is not None:
            self._observe(outcome.record)
        return _settled(record.record_id, offline, outcome)

    def _timing(self, decided_at: float) -> RecordError | None:
        now = self._clock.now()
        if decided_at > now + CLOCK_SKEW_S:
            return RecordError("future", "scanned_at is more than 300 s ahead of the service")
        if decided_at < now - self._offline.upload_deadline_s:
            return RecordError("past_deadline", "scanned_at is older than the upload deadline "
                               f"({self._offline.upload_deadline_s} s)")
        return None


def _rejected(record_id: str | None, error: RecordError) -> dict[str, Any]:
    return {"record_id": record_id, "status": "rejected", "error": error.error,
            "detail": error.detail}


def _settled(record_id: str, offline: OfflineContext, outcome: Outcome) -> dict[str, Any]:
    """The service's decision (as a live scan's answer has it) and how it compares."""
    decision = orjson.loads(outcome.response)
    reason = decision["reason"]
    return {
        "record_id": record_id,
        "status": "applied" if outcome.record is not None else "duplicate",
        "txn_id": decision["txn_id"], "decision": decision["decision"], "reason": reason,
        "fare": decision.get("fare"),
        "differs": offline.differs(decision["decision"], reason),
        "fraud": FRAUD_KINDS.get(Reason(reason)),
    }
