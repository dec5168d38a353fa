"""Reading a local day's ledger, page by page, in commit order."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from validator.ledger.record import LedgerRecord
from validator.state.store import LedgerReader

PAGE_SIZE = 1000  # records per store round trip: memory stays bounded on any day


async def day_records(
    store: LedgerReader, day: dt.date, *, page_size: int = PAGE_SIZE
) -> AsyncIterator[LedgerRecord]:
    """Every ledger record of local date `day`, oldest first."""
    after: str | None = None
    while True:
        page = await store.ledger_read(day, after, page_size)
        for _, raw in page:
            yield LedgerRecord.from_json(raw)
        if len(page) < page_size:
            return
        after = page[-1][0]
