"""The live board: today's figures for the operator dashboard, kept incrementally.

`LiveBoard.add` takes one ledger record at a time (a few dict updates, no scans), so the
board keeps up with thousands of decisions per second; `snapshot` renders the whole
board as one JSON-ready dict, once per tick, shared by every dashboard client.

Two kinds of state live here. *Daily* figures (totals, reasons, fares, entries per
spot, rides per route, per-terminal counts) start again at `rollover` to a new local
day. *Continuous* ones (the per-second window, terminals' last seen, the fraud feed)
carry across midnight, because a terminal silent since 23:55 is still silent at 00:05.

Privacy: the board keeps no name or SSN (the ledger has none), shows card numbers only
masked and holder refs only shortened, and counts categories in aggregate only.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from validator.ledger.record import LedgerRecord
from validator.policy.model import City, Spot, Terminal
from validator.web.dashboard.offline_board import OfflineTerminals
from validator.web.dashboard.redact import mask_card, short_ref

WINDOW_S = 120  # the moving per-second chart
RATE_S = 10  # "decisions per second" is the mean over this many complete seconds
FEED_SIZE = 60  # fraud feed entries kept
COALESCE_S = 10  # repeats of one (kind, terminal) within this many seconds share a line
SILENT_AFTER_S = 600  # a registered terminal not seen for this long is "silent"
MAX_UNREGISTERED = 50  # ids claimed by failed signatures, kept apart and bounded
CAPACITY_WARN = 0.8
_TERMINAL_ID = re.compile(r"[A-Z0-9-]{1,40}")


def yuan(fen: int) -> str:
    """Fen as a yuan amount with two decimals, exactly (no float rounding)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@dataclass(slots=True)
class TerminalStats:
    last_seen: float | None = None  # continuous
    requests: int = 0  # ledgered decisions today
    denies: int = 0
    errors: int = 0  # HTTP errors today after authentication (this process)
    bad_signatures: int = 0  # 401s claiming this id today (this process)


@dataclass(slots=True)
class FeedItem:
    at: float
    kind: str
    terminal: str
    venue: str | None
    holder: str | None  # masked card number or shortened holder_ref
    count: int = 1


@dataclass(slots=True)
class _Daily:
    accepted: int = 0
    denied: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    fares: collections.Counter[str] = field(default_factory=collections.Counter)
    categories: collections.Counter[str] = field(default_factory=collections.Counter)
    credentials: collections.Counter[str] = field(default_factory=collections.Counter)
    fraud: collections.Counter[str] = field(default_factory=collections.Counter)
    standard_fen: int = 0
    charged_fen: int = 0
    spot_entries: collections.Counter[str] = field(default_factory=collections.Counter)
    route_rides: collections.Counter[str] = field(default_factory=collections.Counter)
    route_denies: collections.Counter[str] = field(default_factory=collections.Counter)
    hours: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(24)])


class LiveBoard:
    """Incremental aggregation of one city's decisions for the current local day."""

    def __init__(
        self, city: City, terminals: dict[str, Terminal], day: dt.date,
        *, started_at: float, silent_after_s: float = SILENT_AFTER_S,
    ) -> None:
        self.city = city
        self.registry = terminals
        self.day = day
        self.started_at = started_at  # a terminal never seen counts as silent only so long after
        self.silent_after_s = silent_after_s
        self._daily = _Daily()
        self._terminals = {tid: TerminalStats() for tid in terminals}
        self._unregistered: dict[str, TerminalStats] = {}
        self._seconds: dict[int, list[int]] = {}
        self._horizon = 0  # seconds before this are out of the window: not kept
        self._feed: collections.deque[FeedItem] = collections.deque(maxlen=FEED_SIZE)
        self._open: dict[tuple[str, str], FeedItem] = {}
        self.offline = OfflineTerminals({tid: t.venue for tid, t in terminals.items()},
                                        offline_after_s=silent_after_s)

    # --- input -----------------------------------------------------------------------

    def add(self, record: LedgerRecord) -> None:
        """Count one ledgered decision, through the same path as the ledger's bytes."""
        self.add_json(record.to_json())

    def add_json(self, raw: bytes) -> None:
        """Count one ledger record as stored (JSON) — of `self.day`; the caller routes days.

        Works on the parsed dict: building a frozen `LedgerRecord` costs several times
        more than the counting, and the feed reads thousands of records a second.
        """
        r: dict[str, Any] = orjson.loads(raw)
        daily, accept = self._daily, r["decision"] == "accept"
        at: float = r["decided_at_unix"]
        if int(at) >= self._horizon:
            self._seconds.setdefault(int(at), [0, 0])[0 if accept else 1] += 1
        hour = int(r["decided_at"][11:13]) % 24  # decided_at is local time, RFC 3339
        daily.hours[hour][0 if accept else 1] += 1
        daily.credentials[r["credential"]] += 1
        kind, _, venue_id = r["venue"].partition(":")
        if accept:
            daily.accepted += 1
            daily.fares[r.get("fare_class") or "unknown"] += 1
            daily.standard_fen += r.get("standard_fen") or 0
            daily.charged_fen += r.get("amount_fen") or 0
            daily.categories.update(r.get("rule_categories") or ())
            if kind == "spot":
                daily.spot_entries[venue_id] += 1
            else:
                daily.route_rides[venue_id] += 1
        else:
            daily.denied += 1
            daily.reasons[r["reason"]] += 1
            if kind == "bus":
                daily.route_denies[venue_id] += 1
        stats = self._terminals.get(r["terminal"]) or self._foreign(r["terminal"])
        stats.requests += 1
        stats.denies += not accept
        if stats.last_seen is None or at > stats.last_seen:
            stats.last_seen = at
        fraud = r.get("fraud")
        if fraud is not None:
            daily.fraud[fraud] += 1
            holder = mask_card(r.get("card_no")) or short_ref(r.get("holder_ref"))
            self._signal(at, fraud, r["terminal"], r["venue"], holder)

    def http_error(self, terminal_id: str, status: int, at: float, count: int = 1) -> None:
        """`count` terminal requests answered with an HTTP error, not a decision, the
        latest at `at` (any validator process: they reach the board through the live
        feed's error stream).

        A 401 is a bad terminal signature: a fraud signal, counted against the id it
        claimed (unverified, hence bounded). Other errors come after authentication.
        """
        registered = self._terminals.get(terminal_id)
        if status == 401:
            stats = registered or self._foreign(terminal_id)
            stats.bad_signatures += count
            self._daily.fraud["bad_terminal_signature"] += count
            venue = self.registry[terminal_id].venue if registered is not None else None
            self._signal(at, "bad_terminal_signature", terminal_label(terminal_id), venue,
                         None, count)
        elif registered is not None:
            registered.errors += count
            if registered.last_seen is None or at > registered.last_seen:
                registered.last_seen = at

    def advance(self, now: float) -> None:
        """Move the window to end at `now`: older seconds and stale coalescing go."""
        self._horizon = int(now) - WINDOW_S
        for second in [s for s in self._seconds if s < self._horizon]:
            del self._seconds[second]
        for key in [k for k, item in self._open.items() if now - item.at > COALESCE_S]:
            del self._open[key]

    def fresh(self, day: dt.date) -> LiveBoard:
        """An empty board of the same city and terminals, for `day`."""
        board = LiveBoard(self.city, self.registry, day, started_at=self.started_at,
                          silent_after_s=self.silent_after_s)
        board.offline.max_offline_age_s = self.offline.max_offline_age_s
        return board

    def rollover(self, day: dt.date) -> None:
        """Start the daily figures again for `day`; continuous state carries over."""
        self.day = day
        self._daily = _Daily()
        self.offline.rollover()
        for stats in (*self._terminals.values(), *self._unregistered.values()):
            stats.requests = stats.denies = stats.errors = stats.bad_signatures = 0

    # --- output ----------------------------------------------------------------------

    def terminal_last_seen(self) -> Iterable[tuple[str, str, float]]:
        """(terminal id, venue, last seen) of every registered terminal seen so far."""
        for tid, stats in self._terminals.items():
            if stats.last_seen is not None:
                yield tid, self.registry[tid].venue, stats.last_seen

    def spot_use(self) -> Iterable[tuple[str, int, int]]:
        """(spot id, entries today, daily capacity) of every spot of the city."""
        for spot in self.city.spots:
            yield spot.id, self._daily.spot_entries[spot.id], spot.capacity_per_day

    def snapshot(self, now: float) -> dict[str, Any]:
        """The whole board as plain JSON-ready data."""
        daily = self._daily
        decided = daily.accepted + daily.denied
        return {
            "day": self.day.isoformat(),
            "now": now,
            "totals": {"accepted": daily.accepted, "denied": daily.denied,
                       "deny_pct": round(100 * daily.denied / decided, 1) if decided else 0.0},
            **self._window(now),
            "hours": {"accept": [h[0] for h in daily.hours], "deny": [h[1] for h in daily.hours]},
            "reasons": [{"code": c, "count": n} for c, n in daily.reasons.most_common()],
            "fares": {"free": daily.fares["free"], "half": daily.fares["half"],
                      "full": daily.fares["full"]},
            "money": {"standard_fen": daily.standard_fen, "charged_fen": daily.charged_fen,
                      "concession_fen": daily.standard_fen - daily.charged_fen,
                      "concession_yuan": yuan(daily.standard_fen - daily.charged_fen)},
            "categories": dict(daily.categories.most_common()),
            "credentials": dict(daily.credentials),
            "spots": [self._spot_row(spot) for spot in self.city.spots],
            "routes": [{"id": r.id, "operator": r.operator, "rides": daily.route_rides[r.id],
                        "denies": daily.route_denies[r.id]} for r in self.city.routes],
            "terminals": [self._terminal_row(tid, stats, now)
                          for tid, stats in self._terminals.items()],
            "unregistered": [{"id": tid, "bad_signatures": s.bad_signatures}
                             for tid, s in self._unregistered.items() if s.bad_signatures],
            "fraud": {"counts": dict(daily.fraud),
                      "feed": [self._feed_row(item) for item in reversed(self._feed)]},
            "offline": self.offline.rows(now, {tid: s.last_seen for tid, s in
                                               self._terminals.items() if s.last_seen}),
        }

    # --- helpers ---------------------------------------------------------------------

    def _window(self, now: float) -> dict[str, Any]:
        end = int(now)  # the current second is still filling: the chart stops before it
        start = end - WINDOW_S
        cells = [self._seconds.get(s, (0, 0)) for s in range(start, end)]
        recent = cells[-RATE_S:]
        return {
            "series": {"start": start, "accept": [c[0] for c in cells],
                       "deny": [c[1] for c in cells]},
            "rate": {"accept_per_s": round(sum(c[0] for c in recent) / RATE_S, 1),
                     "deny_per_s": round(sum(c[1] for c in recent) / RATE_S, 1)},
        }

    def _spot_row(self, spot: Spot) -> dict[str, Any]:
        entries, capacity = self._daily.spot_entries[spot.id], spot.capacity_per_day
        ratio = entries / capacity
        level = "full" if ratio >= 1 else "warn" if ratio >= CAPACITY_WARN else "ok"
        return {"id": spot.id, "name": spot.name, "name_en": spot.name_en,
                "entries": entries, "capacity": capacity, "pct": round(100 * ratio, 1),
                "level": level}

    def _terminal_row(self, tid: str, stats: TerminalStats, now: float) -> dict[str, Any]:
        terminal = self.registry[tid]
        idle = None if stats.last_seen is None else max(0.0, now - stats.last_seen)
        attempts = stats.requests + stats.errors
        error_pct = round(100 * stats.errors / attempts, 1) if attempts else 0.0
        if not terminal.enabled:
            status = "disabled"
        elif idle is None:
            # Never seen: silent once the board has watched as long as the limit.
            status = "silent" if now - self.started_at > self.silent_after_s else "idle"
        elif idle > self.silent_after_s:
            status = "silent"
        elif (stats.errors >= 5 and error_pct >= 20) or stats.bad_signatures >= 5:
            status = "warn"
        else:
            status = "ok"
        return {"id": tid, "kind": terminal.kind, "venue": terminal.venue,
                "status": status, "last_seen": stats.last_seen,
                "idle_s": None if idle is None else round(idle),
                "requests": stats.requests, "denies": stats.denies, "errors": stats.errors,
                "error_pct": error_pct, "bad_signatures": stats.bad_signatures}

    @staticmethod
    def _feed_row(item: FeedItem) -> dict[str, Any]:
        return {"at": item.at, "kind": item.kind, "terminal": item.terminal,
                "venue": item.venue, "holder": item.holder, "count": item.count}

    def _signal(self, at: float, kind: str, terminal: str, venue: str | None,
                holder: str | None, count: int = 1) -> None:
        # A burst of one signal at one terminal is one line with a count, so a flood of
        # forged requests cannot push every other signal off the feed.
        key = (kind, terminal)
        item = self._open.get(key)
        if item is not None and holder == item.holder and abs(at - item.at) <= COALESCE_S:
            item.count += count
            item.at = max(item.at, at)
            return
        item = FeedItem(at, kind, terminal, venue, holder, count)
        self._feed.append(item)
        self._open[key] = item

    def _foreign(self, terminal_id: str) -> TerminalStats:
        label = terminal_label(terminal_id)
        stats = self._unregistered.get(label)
        if stats is None:
            if len(self._unregistered) >= MAX_UNREGISTERED - 1:  # one slot for the rest
                label = "(other)"
            stats = self._unregistered.setdefault(label, TerminalStats())
        return stats


def terminal_label(terminal_id: str) -> str:
    """A claimed id as shown: ids out of the registry's alphabet are not echoed."""
    return terminal_id if _TERMINAL_ID.fullmatch(terminal_id) else "(invalid id)"
