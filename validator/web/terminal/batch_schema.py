"""The batch upload's body (protocol §8.4), parsed record by record.

A body that is not `{"records": [...]}` is a 400; more records than the configuration
allows is a 413. Within it, each record is parsed on its own: a record that is not the
schema becomes a `RecordError` at its index (`invalid_record`, with a detail naming the
field), and the rest of the batch is still applied.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from validator.offline.reconcile import TERMINAL_ONLY_REASONS, RecordError, UploadedRecord
from validator.reasons import Reason
from validator.web.body import parse_json_object
from validator.web.exceptions import ApiError, invalid
from validator.web.terminal.schema import (
    companion_of,
    parse_credential,
    parse_rfc3339,
    request_id_of,
    scanned_at_text_of,
)

__all__ = ["parse_batch"]

_REASONS = frozenset(r.value for r in Reason) | TERMINAL_ONLY_REASONS


def parse_batch(body: bytes, max_records: int) -> list[UploadedRecord | RecordError]:
    doc = parse_json_object(body)
    records = doc.get("records")
    if not isinstance(records, list):
        raise invalid("records: an array is required")
    if len(records) > max_records:
        raise ApiError(413, "payload_too_large",
                       f"{len(records)} records; at most {max_records} in one batch")
    return [_record(raw) for raw in records]


def _record(raw: Any) -> UploadedRecord | RecordError:
    try:
        return _parse(raw)
    except ApiError as exc:
        return RecordError("invalid_record", exc.detail or "not a record", _usable_id(raw))


def _usable_id(raw: Any) -> str | None:
    """The record's own id if it has a well-formed one, to name it in a refusal."""
    try:
        return request_id_of(raw, "record_id") if isinstance(raw, dict) else None
    except ApiError:
        return None


def _parse(raw: Any) -> UploadedRecord:
    if not isinstance(raw, dict):
        raise invalid("record: an object is required")
    record_id = request_id_of(raw, "record_id")
    scanned_text = scanned_at_text_of(raw)
    companion = companion_of(raw)
    theirs = raw.get("terminal_decision")
    if not isinstance(theirs, dict) or theirs.get("decision") not in ("accept", "deny"):
        raise invalid("terminal_decision.decision: \"accept\" or \"deny\" required")
    reason = theirs.get("reason")
    if not isinstance(reason, str) or reason not in _REASONS or \
            (reason == "ok") != (theirs["decision"] == "accept"):
        raise invalid("terminal_decision.reason: \"ok\" for an accept, else a deny reason")
    return UploadedRecord(
        record_id=record_id, scanned_at=parse_rfc3339(scanned_text),
        scanned_at_text=scanned_text, credential=parse_credential(raw.get("credential")),
        companion=companion, terminal_decision=theirs["decision"], terminal_reason=reason,
        body_sha256=hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest())
