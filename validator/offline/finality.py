"""When a local day's settlement is final: no offline record of it can arrive any more.

A record is taken until `upload_deadline_s` after its decision time, so the last record
of a local day can come until the day's end plus the deadline; after that the day's
ledger no longer changes and its settlement is final. Without offline terminals a day
is final when it ends.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

__all__ = ["finality", "uploads_until"]


def uploads_until(day: dt.date, time_zone: str, upload_deadline_s: int) -> dt.datetime:
    """The local time after which no record of `day` is taken (the calendar's last
    second for a day so near its end that the sum does not fit)."""
    tz = zoneinfo.ZoneInfo(time_zone)
    try:
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
        return end + dt.timedelta(seconds=upload_deadline_s)
    except OverflowError:
        return dt.datetime.combine(dt.date.max, dt.time(23, 59, 59), tz)


def finality(day: dt.date, time_zone: str, upload_deadline_s: int | None,
             now: float) -> dict[str, Any]:
    """`{"final": …, "uploads_until": RFC 3339}` for a settlement of `day` read at `now`."""
    until = uploads_until(day, time_zone, upload_deadline_s or 0)
    return {"final": now >= until.timestamp(), "uploads_until": until.isoformat()}
