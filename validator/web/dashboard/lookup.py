"""`GET /v1/dashboard/decisions`: a holder's recent decisions, for an admin at the desk.

The ledger has no index by holder, so the lookup scans the last few local days'
ledgers. It is cheap per record (a byte search; only matches are parsed) and bounded
(days, records scanned), and the answer says when a bound cut it short.

Privacy: the answer has masked card numbers and shortened holder refs, and neither the
holder's categories nor the rule that relied on them (a rule id such as
`bus.disabled_free` would name a category of one person): fare class and reason only.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from validator.holders.ref import is_holder_ref
from validator.ledger.record import LedgerRecord
from validator.state.store import LedgerReader
from validator.web.dashboard.redact import mask_card, short_ref
from validator.web.exceptions import invalid

DEFAULT_DAYS = 3
MAX_DAYS = 7
RESULT_LIMIT = 100
SCAN_LIMIT = 2_000_000  # records read at most per lookup
BATCH = 5000
_CARD_NO = re.compile(r"[A-Z0-9]{9}")


@dataclass(frozen=True, slots=True)
class Query:
    field: str  # "holder_ref" | "card_no"
    value: str
    days: int

    @property
    def needle(self) -> bytes:
        # The ledger's JSON is orjson's compact form: `"card_no":"A12345678"` exactly.
        return b'"%s":"%s"' % (self.field.encode(), self.value.encode())

    def shown(self) -> dict[str, str | None]:
        masked = mask_card(self.value) if self.field == "card_no" else short_ref(self.value)
        return {self.field: masked}


def parse_query(params: dict[str, str]) -> Query:
    """Exactly one of `holder_ref` / `card_no`, and an optional `days` (1–7)."""
    ref, card = params.get("holder_ref", "").strip(), params.get("card_no", "").strip()
    if bool(ref) == bool(card):
        raise invalid("give exactly one of holder_ref and card_no")
    if ref and not is_holder_ref(ref):
        raise invalid("holder_ref must be 32 lowercase hex characters")
    if card and not _CARD_NO.fullmatch(card.upper()):
        raise invalid("card_no must be 9 characters of A-Z and 0-9")
    days_text = params.get("days", str(DEFAULT_DAYS))
    if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_DAYS:
        raise invalid(f"days must be an integer from 1 to {MAX_DAYS}")
    return Query("holder_ref" if ref else "card_no", ref or card.upper(), int(days_text))


async def find_decisions(store: LedgerReader, query: Query, today: dt.date) -> dict[str, Any]:
    """The newest matching decisions of the last `query.days` local days, newest first."""
    found: list[LedgerRecord] = []
    scanned, truncated = 0, False
    days = [today - dt.timedelta(days=n) for n in range(query.days)]
    for day in days:  # newest day first
        if len(found) >= RESULT_LIMIT or truncated:
            break
        matches: collections.deque[LedgerRecord] = collections.deque(maxlen=RESULT_LIMIT)
        cursor: str | None = None
        while True:
            entries = await store.ledger_read(day, cursor, BATCH)
            scanned += len(entries)
            matches.extend(LedgerRecord.from_json(raw) for _, raw in entries
                           if query.needle in raw)
            if len(entries) < BATCH:
                break
            await asyncio.sleep(0)  # a long scan must not hold up validations
            cursor = entries[-1][0]
            if scanned >= SCAN_LIMIT:
                truncated = True
                break
        found.extend(reversed(matches))
    return {
        "query": query.shown(),
        "days": [d.isoformat() for d in days],
        "scanned": scanned,
        "truncated": truncated or len(found) > RESULT_LIMIT,
        "decisions": [_row(r) for r in found[:RESULT_LIMIT]],
    }


def _row(record: LedgerRecord) -> dict[str, Any]:
    return {
        "decided_at": record.decided_at,
        "terminal": record.terminal,
        "venue": record.venue,
        "operator": record.operator,
        "credential": record.credential,
        "decision": record.decision,
        "reason": record.reason,
        "fare_class": record.fare_class,
        "amount_fen": record.amount_fen,
        "standard_fen": record.standard_fen,
        "companion": record.companion,
        "card": mask_card(record.card_no),
        "holder": short_ref(record.holder_ref),
        "fraud": record.fraud,
    }
