"""Settlement: what each operator is owed for a local day, computed from the ledger alone.

The city reimburses operators for every free or half-price ride and entry. A day's
report groups the *accepted* decisions of that day's ledger by operator × venue × rule ×
fare class and sums, in fen, the standard fares, what was charged and the concession
(standard − charged). Denies carry no money and are left out. The ledger is read in
pages, so any day still in retention can be reported with bounded memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any

from validator.ledger.reading import day_records
from validator.state.store import LedgerReader

__all__ = ["CSV_COLUMNS", "InvalidOperator", "Settlement", "SettlementRow", "parse_operator",
           "settle"]

CSV_COLUMNS = ("operator", "venue", "rule", "fare_class", "count", "standard_fen",
               "charged_fen", "concession_fen")

_Key = tuple[str, str, str, str]  # operator, venue, rule, fare class
_OPERATOR = re.compile(r"[A-Z0-9-]{3,40}")  # the operator id shape of city.toml


class InvalidOperator(ValueError):
    """An operator filter that cannot name an operator; the message is safe to show."""


def parse_operator(value: str) -> str:
    """The `operator` filter of a report, as the API and the command line take it.

    Only its shape is checked: an operator that settled nothing that day, or that
    city.toml no longer lists, gets an empty report, as past days outlive configuration.
    """
    if not _OPERATOR.fullmatch(value):
        raise InvalidOperator("operator: expected an operator id, 3-40 characters of [A-Z0-9-]")
    return value


@dataclass(slots=True)
class SettlementRow:
    operator: str
    venue: str
    rule: str
    fare_class: str
    count: int = 0
    standard_fen: int = 0
    charged_fen: int = 0

    @property
    def concession_fen(self) -> int:
        return self.standard_fen - self.charged_fen

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CSV_COLUMNS}


@dataclass(frozen=True, slots=True)
class Settlement:
    day: dt.date
    rows: tuple[SettlementRow, ...]  # sorted by operator, venue, rule, fare class

    def totals(self) -> dict[str, int]:
        return {
            "count": sum(r.count for r in self.rows),
            "standard_fen": sum(r.standard_fen for r in self.rows),
            "charged_fen": sum(r.charged_fen for r in self.rows),
            "concession_fen": sum(r.concession_fen for r in self.rows),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "rows": [r.as_dict() for r in self.rows],
                "totals": self.totals()}

    def as_csv(self) -> str:
        """The rows as CSV (RFC 4180, CRLF line ends), the column names first."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in self.rows:
            writer.writerow([getattr(row, name) for name in CSV_COLUMNS])
        return out.getvalue()


async def settle(store: LedgerReader, day: dt.date, operator: str | None = None) -> Settlement:
    """The settlement of local date `day`, for every operator or just `operator`."""
    rows: dict[_Key, SettlementRow] = {}
    async for record in day_records(store, day):
        if record.decision != "accept" or (operator is not None and record.operator != operator):
            continue
        # An accept always has a rule, a fare class and both amounts (ledger/record.py).
        rule, fare_class = record.rule or "", record.fare_class or ""
        key = (record.operator, record.venue, rule, fare_class)
        row = rows.get(key)
        if row is None:
            row = rows[key] = SettlementRow(*key)
        row.count += 1
        row.standard_fen += record.standard_fen or 0
        row.charged_fen += record.amount_fen or 0
    return Settlement(day, tuple(rows[key] for key in sorted(rows)))
