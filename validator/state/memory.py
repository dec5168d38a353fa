"""`MemoryStore`: the embedded store for development and tests, same contract as Redis.

State lives in dicts keyed by the same names as in Redis (`keys.py`), with expiry read
from the injected `Clock`, so a test can move time. Atomicity comes from asyncio: a
commit checks its guards and applies its effects without an `await` in between, so no
other task can interleave. Ledger and audit entry ids are minted in the Redis stream id
shape (`<ms>-<seq>`, strictly increasing per stream), so paging behaves identically.

Each day's ledger is dropped once its last commit is `ledger_retention_days` old, as
Redis expires the day's stream (the commit script refreshes its EXPIRE); a heap with one
deadline per day finds the days due at one comparison per commit. Within the retention
the ledger still grows with every record: ~600 B of JSON, ~0.9 KB in this heap, i.e.
~0.8 GB a day at `make run`'s ~10 decisions/s, kept up to the retention (default 400
days, `serve --ledger-retention-days`). Kept bytes are copied (`_owned`). Nothing here
survives the process: this store is for a single development process, not for
production.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from validator.clock import Clock, SystemClock
from validator.policy.types import Category
from validator.state import keys
from validator.state.keys import SnapshotKeys, commit_keys
from validator.state.store import (
    FEED_ERRORS_KEPT,
    USAGE_TTL_S,
    Block,
    BlockKind,
    Commit,
    CommitResult,
    Committed,
    Conflict,
    Duplicate,
    Guard,
    Snapshot,
    SnapshotQuery,
    StoredResponse,
)

V = TypeVar("V")


def _owned(data: bytes) -> bytes:
    """A right-sized copy of bytes this store keeps. orjson (3.13) hands out its output
    in the buffer it wrote into: a 700-byte ledger record holds a 16 KB allocation, a
    7-byte document 4 KB, for as long as it lives. Redis copies what it is sent; this
    store must too, or it holds ~20 KB per decision (~0.15 µs a copy)."""
    return memoryview(data).tobytes()


class _Expiring(Generic[V]):
    """A dict whose entries expire; a heap of deadlines reclaims them as time passes."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[V, float]] = {}
        self._deadlines: list[tuple[float, str]] = []

    def get(self, key: str, now: float) -> V | None:
        entry = self._data.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def set(self, key: str, value: V, now: float, ttl_s: float) -> None:
        deadline = now + ttl_s
        self._data[key] = (value, deadline)
        heapq.heappush(self._deadlines, (deadline, key))
        self._reclaim(now)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def _reclaim(self, now: float) -> None:
        # A heap entry may be stale (the key was rewritten with a later deadline since):
        # only delete when the stored deadline itself has passed.
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[1] <= now:
                del self._data[key]


@dataclass
class _Stream:
    """An append-only log with Redis-shaped, strictly increasing entry ids."""

    ids: list[tuple[int, int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    entries: list[bytes] = field(default_factory=list)
    last_added: float = 0.0  # the latest `add`'s clock time (a ledger's retention counts from it)

    def add(self, now: float, entry: bytes) -> str:
        ms = int(now * 1000)
        last = self.ids[-1] if self.ids else (0, -1)
        # Like XADD *: a clock that stands still or steps back reuses the last ms.
        new = (ms, 0) if ms > last[0] else (last[0], last[1] + 1)
        name = f"{new[0]}-{new[1]}"
        self.ids.append(new)
        self.names.append(name)
        self.entries.append(_owned(entry))
        self.last_added = max(self.last_added, now)  # like the ids: never back in time
        return name

    def after(self, after: str | None, count: int) -> list[tuple[str, bytes]]:
        start = 0 if after is None else bisect.bisect_right(self.ids, keys.parse_entry_id(after))
        stop = start + max(count, 0)
        return list(zip(self.names[start:stop], self.entries[start:stop], strict=True))

    def trim(self, kept: int) -> None:
        """Drop the oldest entries beyond `kept` (XADD … MAXLEN)."""
        extra = len(self.entries) - kept
        if extra > 0:
            del self.ids[:extra], self.names[:extra], self.entries[:extra]

    def newest(self, count: int) -> list[tuple[str, bytes]]:
        start = max(len(self.entries) - max(count, 0), 0)
        pairs = zip(self.names[start:], self.entries[start:], strict=True)
        return list(reversed(list(pairs)))


class MemoryStore:
    """The `Store` protocol in process memory; TTLs follow `clock`."""

    def __init__(self, clock: Clock | None = None, *, ledger_retention_days: int = 400) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._retention_s = ledger_retention_days * 86400
        self._responses: _Expiring[StoredResponse] = _Expiring()
        self._nonces: _Expiring[bool] = _Expiring()
        self._counts: _Expiring[int] = _Expiring()  # rides and capacity per day
        self._entered: _Expiring[bool] = _Expiring()
        self._companions: _Expiring[float] = _Expiring()
        self._atc: dict[str, int] = {}  # no expiry: a counter is a card's lifetime fact
        self._holders: dict[str, tuple[Category, ...]] = {}
        # The registry's refs in order, for `list_holders`; None until the next page
        # after a bulk import (sorted then, not on every page).
        self._holder_order: list[str] | None = None
        self._blocks: dict[str, Block] = {}
        self._ledgers: dict[dt.date, _Stream] = {}
        # One (deadline, day) per day in `_ledgers`, never later than the day's true
        # deadline (its last commit + the retention): a commit moves the latter only.
        self._ledger_deadlines: list[tuple[float, dt.date]] = []
        self._audit = _Stream()
        self._feed_lease: _Expiring[str] = _Expiring()
        self._feed_board: _Expiring[bytes] = _Expiring()
        self._feed_errors = _Stream()

    # --- the decision path ---

    async def snapshot(self, query: SnapshotQuery) -> Snapshot:
        """What the decision needs, read at one instant (no await inside)."""
        now, ks = self._clock.now(), SnapshotKeys.of(query)
        return Snapshot(
            stored=self._responses.get(ks.stored, now),
            nonce_seen=ks.nonce is not None and self._nonces.get(ks.nonce, now) is not None,
            atc_high=None if ks.atc is None else self._atc.get(ks.atc),
            card_block=None if ks.card_block is None else self._blocks.get(ks.card_block),
            holder_block=None if ks.holder_block is None else self._blocks.get(ks.holder_block),
            categories=() if ks.holder is None else self._holders.get(ks.holder, ()),
            concession_rides_today=0 if ks.rides is None else self._count(ks.rides, now),
            entered_today=ks.entered is not None and self._entered.get(ks.entered, now) is not None,
            spot_entries_today=0 if ks.capacity is None else self._count(ks.capacity, now),
            companion_opened_at=None
            if ks.companion is None
            else self._companions.get(ks.companion, now),
        )

    async def commit(self, commit: Commit) -> CommitResult:
        """Guards, then every effect, with no await in between: atomic under asyncio."""
        now, ks = self._clock.now(), commit_keys(commit)
        stored = self._responses.get(ks["idempotency"], now)
        if stored is not None:
            return Duplicate(stored)
        failed = self._failed_guard(commit, ks, now)
        if failed is not None:
            return Conflict(failed)
        self._apply(commit, ks, now)
        self._responses.set(
            ks["idempotency"], StoredResponse(commit.body_sha256, _owned(commit.response)), now,
            commit.idempotency_ttl_s,
        )
        self._reclaim_ledgers(now)
        ledger = self._ledgers.get(commit.local_date)
        if ledger is None:  # a new day, or one dropped past its retention: a new stream
            ledger = self._ledgers[commit.local_date] = _Stream()
            heapq.heappush(self._ledger_deadlines, (now + self._retention_s, commit.local_date))
        return Committed(ledger.add(now, commit.ledger))

    def _count(self, key: str, now: float) -> int:
        return self._counts.get(key, now) or 0

    def _failed_guard(self, c: Commit, ks: dict[str, str], now: float) -> Guard | None:
        """The first guard that no longer holds, in the order of store.Guard."""
        if "registry" in ks and (ks["card_block"] in self._blocks or
                                 ks["holder_block"] in self._blocks or
                                 ks["registry"] in self._holders):
            return Guard.STATUS
        if (key := ks.get("nonce")) is not None and self._nonces.get(key, now) is not None:
            return Guard.NONCE
        if (key := ks.get("atc")) is not None and c.atc is not None:
            high = self._atc.get(key)
            if high is not None and high >= c.atc:
                return Guard.ATC
        if self._at_limit(ks.get("rides"), c.concession_ride_cap, now):
            return Guard.CONCESSION_RIDE
        if self._at_limit(ks.get("capacity"), c.spot_capacity, now):
            return Guard.CAPACITY
        if (key := ks.get("entered")) is not None and self._entered.get(key, now) is not None:
            return Guard.ENTERED
        use = c.companion_use
        if (key := ks.get("companion")) is not None and use is not None:
            # Exact float equality: the window must be the very one the decision saw.
            return Guard.COMPANION if self._companions.get(key, now) != use else None
        return None

    def _reclaim_ledgers(self, now: float) -> None:
        """Drop every day whose last commit is the retention ago (Redis: the EXPIRE)."""
        heap = self._ledger_deadlines
        while heap and heap[0][0] <= now:
            _, day = heapq.heappop(heap)
            deadline = self._ledgers[day].last_added + self._retention_s
            if deadline <= now:
                del self._ledgers[day]
            else:  # committed to since: due again at its true deadline
                heapq.heappush(heap, (deadline, day))

    def _at_limit(self, key: str | None, limit: int | None, now: float) -> bool:
        return key is not None and limit is not None and self._count(key, now) >= limit

    def _apply(self, c: Commit, ks: dict[str, str], now: float) -> None:
        if (key := ks.get("nonce")) is not None:
            self._nonces.set(key, True, now, c.nonce_ttl_s)
        if (key := ks.get("atc")) is not None and c.atc is not None:
            self._atc[key] = c.atc
        for counter in (ks.get("rides"), ks.get("capacity")):
            if counter is not None:
                self._counts.set(counter, self._count(counter, now) + 1, now, USAGE_TTL_S)
        if (key := ks.get("entered")) is not None:
            self._entered.set(key, True, now, USAGE_TTL_S)
        if (key := ks.get("companion")) is not None:
            if c.companion_use is not None:
                self._companions.delete(key)
            if c.companion_open_at is not None:  # float(): an int stamp reads back as Redis's
                self._companions.set(key, float(c.companion_open_at), now, c.companion_ttl_s)

    # --- eligibility registry ---

    async def get_holder(self, holder_ref: str) -> tuple[Category, ...] | None:
        return self._holders.get(keys.holder(holder_ref))

    async def put_holders(self, records: list[tuple[str, tuple[Category, ...]]]) -> list[bool]:
        """Upsert a batch; per record, True if it was created (else updated)."""
        created = []
        for ref, categories in records:
            key = keys.holder(ref)
            created.append(key not in self._holders)
            self._holders[key] = tuple(categories)
        self._note_added([ref for (ref, _), new in zip(records, created, strict=True) if new])
        return created

    def _note_added(self, refs: list[str]) -> None:
        """Keep `list_holders`' order: a few new refs go in place, a bulk import sorts
        again on the next page (an insertion per ref would be quadratic)."""
        order = self._holder_order
        if order is None or not refs:
            return
        if len(refs) > 64:
            self._holder_order = None
            return
        for ref in refs:
            bisect.insort(order, ref)

    async def delete_holder(self, holder_ref: str) -> bool:
        deleted = self._holders.pop(keys.holder(holder_ref), None) is not None
        order = self._holder_order
        if deleted and order is not None:
            del order[bisect.bisect_left(order, holder_ref)]
        return deleted

    async def list_holders(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, tuple[Category, ...]]]:
        """A page of the registry in ascending order of holder_ref. The order is kept
        between pages and updated in place as holders come and go (sorted again after a
        bulk import): a bundle reads 100,000 holders in 50 pages, and a sort per page
        held the event loop for seconds."""
        prefix = keys.holder("")
        refs = self._holder_order
        if refs is None:
            refs = self._holder_order = sorted(key[len(prefix):] for key in self._holders)
        start = 0 if after is None else bisect.bisect_right(refs, after)
        return [(ref, self._holders[prefix + ref]) for ref in refs[start:start + max(count, 0)]]

    # --- block lists ---

    async def get_block(self, kind: BlockKind, ident: str) -> Block | None:
        return self._blocks.get(keys.block(kind, ident))

    async def put_block(self, kind: BlockKind, ident: str, block: Block) -> Block | None:
        """Set a block; answers the previous one (None if there was none)."""
        key = keys.block(kind, ident)
        previous = self._blocks.get(key)
        self._blocks[key] = block
        return previous

    async def delete_block(self, kind: BlockKind, ident: str) -> Block | None:
        """Remove a block; answers the removed one (None if there was none)."""
        return self._blocks.pop(keys.block(kind, ident), None)

    async def list_blocks(
        self, kind: BlockKind, after: str | None = None, count: int = 100
    ) -> list[tuple[str, Block]]:
        """A page of `kind`'s blocks in ascending order of id (a sort per call: block
        lists are short, and this store serves one development process)."""
        prefix = keys.block(kind, "")
        idents = sorted(key[len(prefix):] for key in self._blocks if key.startswith(prefix))
        start = 0 if after is None else bisect.bisect_right(idents, after)
        page = idents[start:start + max(count, 0)]
        return [(ident, self._blocks[prefix + ident]) for ident in page]

    # --- ledger and audit log ---

    async def ledger_read(
        self, day: dt.date, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Records of `day`'s ledger in commit order, after id `after` (exclusive)."""
        self._reclaim_ledgers(self._clock.now())
        stream = self._ledgers.get(day)
        if stream is None:
            if after is not None:
                keys.parse_entry_id(after)  # a malformed id is an error on every day
            return []
        return stream.after(after, count)

    async def audit_append(self, entry: bytes) -> str:
        return self._audit.add(self._clock.now(), entry)

    async def audit_read(self, count: int = 100) -> list[tuple[str, bytes]]:
        """The newest `count` audit entries, newest first."""
        return self._audit.newest(count)

    # --- the live feed's coordination ---

    async def feed_lease(self, holder: str, ttl_s: float) -> bool:
        now = self._clock.now()
        current = self._feed_lease.get(keys.FEED_LEASE, now)
        if current is not None and current != holder:
            return False
        self._feed_lease.set(keys.FEED_LEASE, holder, now, ttl_s)
        return True

    async def feed_release(self, holder: str) -> None:
        if self._feed_lease.get(keys.FEED_LEASE, self._clock.now()) == holder:
            self._feed_lease.delete(keys.FEED_LEASE)

    async def feed_publish(self, board: bytes, ttl_s: float) -> None:
        self._feed_board.set(keys.FEED_BOARD, _owned(board), self._clock.now(), ttl_s)

    async def feed_board(self) -> bytes | None:
        return self._feed_board.get(keys.FEED_BOARD, self._clock.now())

    async def feed_errors_add(self, entry: bytes) -> str:
        entry_id = self._feed_errors.add(self._clock.now(), entry)
        self._feed_errors.trim(FEED_ERRORS_KEPT)
        return entry_id

    async def feed_errors_read(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        return self._feed_errors.after(after, count)

    # --- lifecycle ---

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
