"""The dashboard's offline panel: which terminals are out of contact now, how old their
bundle is, and since when their decisions wait to be uploaded.

The service cannot see a terminal's own memory, so the panel says what it knows: the
last bundle fetch and the last upload of each terminal (with the records it uploaded
today), and when it was last heard from at all (a live decision, a fetch, an upload).
A terminal that fetched a bundle and has not been heard from for `offline_after_s` is
*offline*; what it decided since its last upload is *pending*; once its bundle is older
than the bundle's maximum offline age it accepts nothing offline (*expired*).

Fetches and uploads leave no ledger record of their own, and any process may serve
them, so each process reports them through the live feed's error stream (as rows with
the event codes of `validator.web.errors` instead of an HTTP status) and the board's
leader counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from validator.web.errors import BUNDLE_FETCHED, RECORDS_UPLOADED

__all__ = ["OfflineTerminals"]

MAX_OFFLINE_AGE_S = 86_400  # config/offline.toml's default; the app passes the real one


@dataclass(slots=True)
class _Seen:
    fetched_at: float | None = None  # continuous
    uploaded_at: float | None = None  # continuous
    uploaded_today: int = 0  # records applied today (this board's day)


class OfflineTerminals:
    """Per terminal, its last bundle fetch and upload; rendered as the offline panel."""

    def __init__(self, venues: dict[str, str], *, offline_after_s: float,
                 max_offline_age_s: float = MAX_OFFLINE_AGE_S) -> None:
        self.venues = venues  # registered terminal id → venue
        self.offline_after_s = offline_after_s
        self.max_offline_age_s = max_offline_age_s
        self._seen: dict[str, _Seen] = {}

    def note(self, terminal_id: str, event: int, at: float, count: int, *,
             today: bool) -> None:
        """One error-stream row of an offline event; `today`: of the board's day."""
        if terminal_id not in self.venues:
            return  # an event is written after authentication: never the case
        seen = self._seen.setdefault(terminal_id, _Seen())
        if event == BUNDLE_FETCHED:
            seen.fetched_at = max(seen.fetched_at or at, at)
        elif event == RECORDS_UPLOADED:
            seen.uploaded_at = max(seen.uploaded_at or at, at)
            seen.uploaded_today += count if today else 0

    def rollover(self) -> None:
        for seen in self._seen.values():
            seen.uploaded_today = 0

    def rows(self, now: float, last_seen: dict[str, float]) -> list[dict[str, Any]]:
        """The panel: every terminal that ever fetched a bundle or uploaded, offline
        ones first, the longest out of contact first."""
        rows = []
        for tid, seen in self._seen.items():
            heard = max(t for t in (seen.fetched_at, seen.uploaded_at, last_seen.get(tid))
                        if t is not None)
            out = now - heard > self.offline_after_s
            age = None if seen.fetched_at is None else max(0.0, now - seen.fetched_at)
            expired = age is not None and age > self.max_offline_age_s
            status = ("expired" if expired else "offline") if out else "online"
            rows.append({
                "id": tid, "venue": self.venues[tid], "status": status,
                "last_heard": heard, "bundle_fetched_at": seen.fetched_at,
                "bundle_age_s": None if age is None else round(age),
                "last_upload_at": seen.uploaded_at, "uploaded_today": seen.uploaded_today,
                "pending_since": heard if out else None})
        rows.sort(key=lambda r: (r["status"] == "online", r["last_heard"]))
        return rows
