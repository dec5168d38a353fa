"""The `Store` contract: every test here runs against the memory and the Redis store.

The `store` fixture (tests/conftest.py) is parametrized, so a behaviour is only written
once and both implementations must show it. Expiry is the one thing left out: Redis
expires by its own clock, so TTLs are checked per store (memory at the end of this file
with a `FixedClock`, Redis in test_redis.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import tracemalloc
from typing import Any

import orjson
import pytest

from validator.clock import FixedClock
from validator.policy.types import Category
from validator.state import keys, open_store
from validator.state import memory as memory_module
from validator.state.memory import MemoryStore
from validator.state.store import (
    IDEMPOTENCY_TTL_S,
    NONCE_TTL_S,
    USAGE_TTL_S,
    Block,
    Commit,
    Committed,
    Conflict,
    Duplicate,
    Guard,
    Snapshot,
    SnapshotQuery,
    Store,
    StoredResponse,
)

TERMINAL = "T-GATE-S03-01"
DAY = dt.date(2026, 12, 2)
REF = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CARD_ID = "369900D156000005" + "00AB12CD34EF5678"
CARD_NO = "A12345678"
SPOT = "S03"
OPENED = 1_795_000_000.123456  # a companion window stamp with a fraction worth keeping


def commit(request_id: str, **fields: Any) -> Commit:
    """A commit whose response and ledger record name the request, to tell them apart."""
    base: dict[str, Any] = {
        "terminal_id": TERMINAL,
        "request_id": request_id,
        "body_sha256": hashlib.sha256(request_id.encode()).hexdigest(),
        "response": b'{"request_id":"%s"}' % request_id.encode(),
        "ledger": b'{"ledger":"%s"}' % request_id.encode(),
        "local_date": DAY,
        "holder_ref": REF,
        "spot_id": SPOT,
    }
    return Commit(**(base | fields))


def query(request_id: str = "probe-0001", **fields: Any) -> SnapshotQuery:
    """A snapshot query that asks for everything the store knows about REF and CARD."""
    base: dict[str, Any] = {
        "terminal_id": TERMINAL,
        "request_id": request_id,
        "local_date": DAY,
        "holder_ref": REF,
        "card_no": CARD_NO,
        "card_id": CARD_ID,
        "nonce": b"nonce-probe-1234",
        "spot_id": SPOT,
    }
    return SnapshotQuery(**(base | fields))


async def committed(store: Store, c: Commit) -> str:
    result = await store.commit(c)
    assert isinstance(result, Committed), result
    return result.ledger_id


async def ledger(store: Store, day: dt.date = DAY) -> list[bytes]:
    return [record for _, record in await store.ledger_read(day)]


# --- snapshot and commit ---------------------------------------------------------------


async def test_empty_store_snapshot(store: Store) -> None:
    assert await store.snapshot(query()) == Snapshot()
    assert await store.snapshot(SnapshotQuery(TERMINAL, "r-00000001", DAY)) == Snapshot()
    assert await store.ledger_read(DAY) == []


async def test_commit_applies_every_effect(store: Store) -> None:
    c = commit(
        "probe-0001", nonce=b"nonce-probe-1234", card_id=CARD_ID, atc=7,
        concession_ride_cap=4, spot_capacity=100, concession_entry=True,
        companion_open_at=OPENED,
    )  # fmt: skip
    ledger_id = await committed(store, c)
    snap = await store.snapshot(query())
    assert snap == Snapshot(
        stored=StoredResponse(c.body_sha256, c.response),
        nonce_seen=True,
        atc_high=7,
        concession_rides_today=1,
        entered_today=True,
        spot_entries_today=1,
        companion_opened_at=OPENED,
    )
    assert await store.ledger_read(DAY) == [(ledger_id, c.ledger)]


async def test_commit_without_guards_writes_only_its_records(store: Store) -> None:
    """A deny made before the credential was verified: no holder, but the one its
    credential names, whose snapshot (the retry's, once verified) finds the record; a
    credential that names none is found without a holder."""
    c = commit("deny-0001", holder_ref=None, named_holder=REF, spot_id=None)
    await committed(store, c)
    assert await store.snapshot(query("deny-0001")) == Snapshot(
        stored=StoredResponse(c.body_sha256, c.response)
    )
    nameless = commit("deny-0002", holder_ref=None, spot_id=None)
    await committed(store, nameless)
    assert await store.snapshot(SnapshotQuery(TERMINAL, "deny-0002", DAY)) == Snapshot(
        stored=StoredResponse(nameless.body_sha256, nameless.response)
    )
    assert sorted(await ledger(store)) == sorted([c.ledger, nameless.ledger])


@dataclasses.dataclass(frozen=True)
class GuardCase:
    """Setup commits that make `guard` fail; the probe's failing and then passing fields."""

    guard: str
    setups: list[dict[str, Any]]
    failing: dict[str, Any]
    passing: dict[str, Any]


# The probe carries every guard, all but one passing, so a Conflict must leave all of
# their effects unapplied. Each test first opens a companion window stamped OPENED.
PROBE: dict[str, Any] = {
    "nonce": b"nonce-probe-1234", "card_id": CARD_ID, "atc": 10, "concession_ride_cap": 4,
    "spot_capacity": 100, "concession_entry": True, "companion_use": OPENED,
    "companion_open_at": OPENED + 60,
}  # fmt: skip
GUARD_CASES = {
    "nonce_spent": GuardCase("nonce", [{"nonce": b"nonce-probe-1234"}], {},
                             {"nonce": b"nonce-other-5678"}),
    "atc_equal": GuardCase("atc", [{"card_id": CARD_ID, "atc": 10}], {}, {"atc": 11}),
    "atc_lower": GuardCase("atc", [{"card_id": CARD_ID, "atc": 12}], {}, {"atc": 13}),
    "ride_cap": GuardCase("concession_ride", [{"concession_ride_cap": 4}] * 2,
                          {"concession_ride_cap": 2}, {"concession_ride_cap": 3}),
    "capacity": GuardCase("capacity",
                          [{"spot_capacity": 100, "holder_ref": f"{i:032x}"} for i in range(3)],
                          {"spot_capacity": 3}, {"spot_capacity": 4}),
    "entered": GuardCase("entered", [{"concession_entry": True}], {}, {"concession_entry": False}),
    "window_other": GuardCase("companion", [], {"companion_use": OPENED + 1e-6},
                              {"companion_use": OPENED}),
    "window_used": GuardCase("companion", [{"companion_use": OPENED}], {},
                             {"companion_use": None}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(GUARD_CASES))
async def test_guard_fails_without_effect_then_passes(store: Store, case: str) -> None:
    guard = GUARD_CASES[case]
    await committed(store, commit("window-0000", companion_open_at=OPENED))
    for n, fields in enumerate(guard.setups):
        await committed(store, commit(f"setup-{n:04}", **fields))
    before, ledger_before = await store.snapshot(query()), await ledger(store)
    assert before.stored is None

    result = await store.commit(commit("probe-0001", **PROBE | guard.failing))

    assert result == Conflict(Guard(guard.guard))
    assert await store.snapshot(query()) == before  # no effect, no idempotency record
    assert await ledger(store) == ledger_before
    await committed(store, commit("probe-0001", **PROBE | guard.failing | guard.passing))
    assert (await store.snapshot(query())).stored is not None


async def test_first_failing_guard_is_reported(store: Store) -> None:
    await committed(store, commit("setup-0001", nonce=b"n-1", card_id=CARD_ID, atc=5))
    await committed(store, commit("setup-0002", spot_capacity=1, concession_entry=True))
    both = commit("probe-0001", nonce=b"n-1", card_id=CARD_ID, atc=5)
    result = await store.commit(both)
    assert result == Conflict(Guard.NONCE) and type(result.guard) is Guard
    later = commit("probe-0002", spot_capacity=1, concession_entry=True)
    assert await store.commit(later) == Conflict(Guard.CAPACITY)


async def test_duplicate_wins_over_every_guard(store: Store) -> None:
    first = commit("req-00000001", **PROBE | {"companion_use": None})
    await committed(store, first)
    before, ledger_before = await store.snapshot(query()), await ledger(store)
    retry = dataclasses.replace(first, body_sha256="0" * 64, response=b"other", ledger=b"x")
    result = await store.commit(retry)
    assert result == Duplicate(StoredResponse(first.body_sha256, first.response))
    assert await store.snapshot(query()) == before
    assert await ledger(store) == ledger_before
    other_terminal = dataclasses.replace(first, terminal_id="T-GATE-S03-02", nonce=None, atc=None)
    assert isinstance(await store.commit(other_terminal), Conflict)  # entered; not a duplicate


async def test_commit_needs_the_ids_its_guards_are_keyed_by(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.commit(commit("bad-0001", holder_ref=None, nonce=b"n-1"))
    with pytest.raises(ValueError):
        await store.commit(commit("bad-0002", spot_id=None, spot_capacity=10))
    assert await ledger(store) == []


async def test_companion_window_is_exact_and_single_use(store: Store) -> None:
    await committed(store, commit("primary-01", companion_open_at=OPENED))
    opened = (await store.snapshot(query())).companion_opened_at
    assert opened == OPENED  # bit-exact, so the equality guard can hold
    assert isinstance(await store.commit(commit("comp-0001", companion_use=OPENED + 1e-6)),
                      Conflict)  # fmt: skip
    await committed(store, commit("comp-0002", companion_use=opened))
    assert (await store.snapshot(query())).companion_opened_at is None
    used = await store.commit(commit("comp-0003", companion_use=opened))
    assert used == Conflict(Guard.COMPANION)
    # A whole-second stamp (even an int) must compare equal to the float read back.
    await committed(store, commit("primary-02", companion_open_at=1_795_000_100))
    read_back = (await store.snapshot(query())).companion_opened_at
    assert read_back == 1_795_000_100.0
    await committed(store, commit("comp-0004", companion_use=read_back))


async def test_new_primary_replaces_the_window(store: Store) -> None:
    await committed(store, commit("primary-01", companion_open_at=OPENED))
    await committed(store, commit("primary-02", companion_open_at=OPENED + 30))
    assert (await store.snapshot(query())).companion_opened_at == OPENED + 30
    replaced = await store.commit(commit("comp-0001", companion_use=OPENED))
    assert replaced == Conflict(Guard.COMPANION)
    other = query(terminal_id="T-GATE-S03-02")
    assert (await store.snapshot(other)).companion_opened_at is None  # per terminal


async def test_usage_is_per_day_spot_and_holder(store: Store) -> None:
    await committed(store, commit("r-00000001", concession_ride_cap=4, spot_capacity=9,
                                  concession_entry=True))  # fmt: skip
    for other in (query(local_date=DAY + dt.timedelta(days=1)), query(spot_id="S04")):
        snap = await store.snapshot(other)
        assert not snap.entered_today and snap.spot_entries_today == 0
    assert (await store.snapshot(query(holder_ref="f" * 32))).spot_entries_today == 1
    assert (await store.snapshot(query(holder_ref="f" * 32))).concession_rides_today == 0


# --- ledger and audit ------------------------------------------------------------------


async def test_ledger_is_per_day_in_commit_order_and_pages(store: Store) -> None:
    tomorrow = DAY + dt.timedelta(days=1)
    for n in range(5):
        await committed(store, commit(f"today-{n:04}"))
        await committed(store, commit(f"tomorrow-{n:04}", local_date=tomorrow))
    today = await store.ledger_read(DAY)
    assert [record for _, record in today] == [b'{"ledger":"today-%04d"}' % n for n in range(5)]
    assert len(await store.ledger_read(tomorrow)) == 5
    assert await store.ledger_read(DAY - dt.timedelta(days=1)) == []

    pages, after = [], None
    while page := await store.ledger_read(DAY, after=after, count=2):
        pages.append(page)
        after = page[-1][0]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [entry for page in pages for entry in page] == today
    assert await store.ledger_read(DAY, after=today[1][0], count=1) == [today[2]]
    assert await store.ledger_read(DAY, count=0) == []
    with pytest.raises(ValueError):
        await store.ledger_read(DAY, after="not-an-id")


async def test_audit_reads_newest_first(store: Store) -> None:
    assert await store.audit_read() == []
    ids = [await store.audit_append(b"entry-%d" % n) for n in range(5)]
    assert len(set(ids)) == 5
    newest = await store.audit_read(3)
    assert newest == [(ids[4], b"entry-4"), (ids[3], b"entry-3"), (ids[2], b"entry-2")]
    assert [entry for _, entry in await store.audit_read(100)] == [
        b"entry-%d" % n for n in reversed(range(5))
    ]


# --- the live feed's lease, published board and error stream ---------------------------


async def test_feed_lease_is_exclusive_renewable_and_released_only_by_its_holder(
    store: Store,
) -> None:
    assert await store.feed_lease("host/1/aa", 3.0) is True
    assert await store.feed_lease("host/2/bb", 3.0) is False
    assert await store.feed_lease("host/1/aa", 3.0) is True  # renewed by its holder
    await store.feed_release("host/2/bb")  # not the holder: nothing happens
    assert await store.feed_lease("host/2/bb", 3.0) is False
    await store.feed_release("host/1/aa")
    assert await store.feed_lease("host/2/bb", 3.0) is True
    assert await store.feed_lease("host/1/aa", 3.0) is False


async def test_feed_board_is_what_was_published_last(store: Store) -> None:
    assert await store.feed_board() is None
    await store.feed_publish(b'{"seq":1}', 3.0)
    await store.feed_publish(b'{"seq":2}', 3.0)
    assert await store.feed_board() == b'{"seq":2}'


async def test_feed_errors_page_in_order(store: Store) -> None:
    assert await store.feed_errors_read() == []
    ids = [await store.feed_errors_add(b"[%d]" % n) for n in range(5)]
    assert len(set(ids)) == 5
    assert [e for _, e in await store.feed_errors_read()] == [b"[%d]" % n for n in range(5)]
    assert await store.feed_errors_read(ids[1], 2) == [(ids[2], b"[2]"), (ids[3], b"[3]")]
    assert await store.feed_errors_read(ids[4]) == []
    assert await store.feed_errors_read(count=0) == []
    with pytest.raises(ValueError):
        await store.feed_errors_read("not-an-id")


# --- eligibility registry and blocks ---------------------------------------------------


async def test_holders_crud_and_batch_flags(store: Store) -> None:
    veteran = (Category("veteran", until=dt.date(2027, 12, 31)),)
    disabled = (Category("disabled", grade=1, until=dt.date(2027, 6, 30)), Category("veteran"))
    assert await store.get_holder("a" * 32) is None
    assert await store.put_holders([("a" * 32, veteran), ("b" * 32, ())]) == [True, True]
    assert await store.put_holders([("a" * 32, disabled), ("c" * 32, veteran)]) == [False, True]
    assert await store.get_holder("a" * 32) == disabled
    assert await store.get_holder("b" * 32) == ()  # known holder, categories cleared
    assert (await store.snapshot(query(holder_ref="c" * 32))).categories == veteran
    assert await store.delete_holder("a" * 32) is True
    assert await store.delete_holder("a" * 32) is False
    assert await store.get_holder("a" * 32) is None
    assert await store.put_holders([]) == []


async def test_holder_batch_larger_than_one_chunk(store: Store) -> None:
    refs = [f"{n:032x}" for n in range(1200)]
    await store.put_holders([(ref, ()) for ref in refs[::2]])
    flags = await store.put_holders([(ref, (Category("veteran"),)) for ref in refs])
    assert flags == [n % 2 == 1 for n in range(1200)]
    assert await store.get_holder(refs[1199]) == (Category("veteran"),)


async def test_blocks_answer_the_previous_value(store: Store) -> None:
    lost = Block(reason="lost")
    until = Block(reason="fraud review", until=dt.date(2026, 12, 31))
    assert await store.get_block("card", CARD_NO) is None
    assert await store.put_block("card", CARD_NO, lost) is None
    assert await store.put_block("card", CARD_NO, until) == lost
    assert await store.get_block("card", CARD_NO) == until
    assert await store.get_block("holder", CARD_NO) is None  # kinds do not mix
    assert await store.put_block("holder", REF, Block()) is None
    snap = await store.snapshot(query())
    assert (snap.card_block, snap.holder_block) == (until, Block())
    assert await store.delete_block("card", CARD_NO) == until
    assert await store.delete_block("card", CARD_NO) is None
    assert await store.get_block("card", CARD_NO) is None


async def test_block_lists_page_in_order_of_id(store: Store) -> None:
    cards = [f"C{n:08d}" for n in range(7)]
    for n, card in enumerate(reversed(cards)):  # stored out of order
        await store.put_block("card", card, Block(reason=f"r{n}"))
    await store.put_block("holder", REF, Block(until=dt.date(2026, 12, 31)))
    first = await store.list_blocks("card", count=3)
    assert [ident for ident, _ in first] == cards[:3]
    assert first[0][1] == Block(reason="r6")
    rest = await store.list_blocks("card", after=first[-1][0], count=10)
    assert [ident for ident, _ in rest] == cards[3:]
    assert await store.list_blocks("card", after=cards[-1]) == []
    assert await store.list_blocks("card", count=0) == []
    assert await store.list_blocks("holder") == [(REF, Block(until=dt.date(2026, 12, 31)))]


async def test_a_changed_or_lifted_block_is_listed_as_it_is_now(store: Store) -> None:
    await store.put_block("card", CARD_NO, Block(reason="lost"))
    await store.put_block("card", CARD_NO, Block(reason="stolen"))
    await store.put_block("card", "B00000001", Block())
    assert await store.list_blocks("card") == [("A12345678", Block(reason="stolen")),
                                               ("B00000001", Block())]
    await store.delete_block("card", CARD_NO)
    assert await store.list_blocks("card") == [("B00000001", Block())]
    await store.delete_block("card", "B00000001")
    assert await store.list_blocks("card") == []
    assert await store.list_blocks("holder") == []


# --- concurrency: one credential, many terminals at the same instant ---------------------


async def commit_all(store: Store, commits: list[Commit]) -> list[Any]:
    return list(await asyncio.gather(*(store.commit(c) for c in commits)))


def kinds(results: list[Any]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for result in results:
        name = type(result).__name__
        counted[name] = counted.get(name, 0) + 1
    return counted


async def test_concurrent_nonce_is_spent_once(store: Store) -> None:
    taps = [commit(f"tap-{n:04}", nonce=b"same-nonce-01") for n in range(50)]
    results = await commit_all(store, taps)
    assert kinds(results) == {"Committed": 1, "Conflict": 49}
    assert {r.guard for r in results if isinstance(r, Conflict)} == {"nonce"}
    assert len(await ledger(store)) == 1


async def test_concurrent_entries_stop_at_capacity(store: Store) -> None:
    entries = [
        commit(f"gate-{n:04}", holder_ref=f"{n:032x}", spot_capacity=37, concession_entry=True)
        for n in range(200)
    ]
    results = await commit_all(store, entries)
    assert kinds(results) == {"Committed": 37, "Conflict": 163}
    assert (await store.snapshot(query())).spot_entries_today == 37
    assert len(await ledger(store)) == 37


async def test_concurrent_rides_stop_at_the_cap(store: Store) -> None:
    rides = [commit(f"ride-{n:04}", concession_ride_cap=4) for n in range(40)]
    assert kinds(await commit_all(store, rides)) == {"Committed": 4, "Conflict": 36}
    assert (await store.snapshot(query())).concession_rides_today == 4


async def test_concurrent_taps_with_one_counter(store: Store) -> None:
    same = [commit(f"same-{n:04}", card_id=CARD_ID, atc=5) for n in range(30)]
    assert kinds(await commit_all(store, same)) == {"Committed": 1, "Conflict": 29}
    # Mixed counters: whatever the interleaving, the committed ones rise in ledger order.
    atcs = [6 + n % 10 for n in range(30)]
    mixed = [commit(f"mixed-{n:04}", card_id=CARD_ID, atc=atc) for n, atc in enumerate(atcs)]
    results = await commit_all(store, mixed)
    by_ledger = {r.ledger_id: atc for atc, r in zip(atcs, results, strict=True)
                 if isinstance(r, Committed)}  # fmt: skip
    in_order = [by_ledger[entry_id] for entry_id, _ in await store.ledger_read(DAY)
                if entry_id in by_ledger]  # fmt: skip
    assert in_order == sorted(set(in_order))
    assert (await store.snapshot(query())).atc_high == max(in_order)


async def test_concurrent_retries_commit_once(store: Store) -> None:
    results = await commit_all(store, [commit("retry-0001")] * 20)
    assert kinds(results) == {"Committed": 1, "Duplicate": 19}


# --- memory only: expiry follows the injected clock (Redis: see test_redis.py) -----------


async def test_memory_store_expires_by_its_clock(fixed_clock: FixedClock) -> None:
    store = MemoryStore(fixed_clock)
    await committed(store, commit(
        "r-00000001", nonce=b"nonce-probe-1234", card_id=CARD_ID, atc=3, concession_ride_cap=4,
        concession_entry=True, companion_open_at=OPENED, companion_ttl_s=120,
    ))  # fmt: skip
    fixed_clock.advance(119)
    assert (await store.snapshot(query("r-00000001"))).companion_opened_at == OPENED
    fixed_clock.advance(1)
    snap = await store.snapshot(query("r-00000001"))
    assert snap.companion_opened_at is None and snap.nonce_seen
    fixed_clock.advance(NONCE_TTL_S)
    assert not (await store.snapshot(query("r-00000001"))).nonce_seen
    fixed_clock.set(1_795_000_000 + IDEMPOTENCY_TTL_S)
    assert (await store.snapshot(query("r-00000001"))).stored is None
    fixed_clock.set(1_795_000_000 + USAGE_TTL_S)
    snap = await store.snapshot(query("r-00000001"))
    assert (snap.entered_today, snap.concession_rides_today, snap.atc_high) == (False, 0, 3)


async def test_memory_ledger_goes_a_retention_after_its_last_commit(
    fixed_clock: FixedClock,
) -> None:
    """Like Redis's EXPIRE of the day's stream, refreshed by every commit to that day."""
    store = await open_store("memory", clock=fixed_clock, ledger_retention_days=1)
    assert isinstance(store, MemoryStore)
    later = DAY + dt.timedelta(days=1)
    first = await committed(store, commit("r-00000001"))
    fixed_clock.advance(3600)
    second = await committed(store, commit("r-00000002"))  # the day lasts 1 d from here
    fixed_clock.advance(10)
    other = await committed(store, commit("r-00000003", local_date=later))
    fixed_clock.advance(86400 - 11)  # a day less 1 s since the last commit (not the first)
    assert await ledger(store) == [b'{"ledger":"r-00000001"}', b'{"ledger":"r-00000002"}']
    fixed_clock.advance(2)  # a day and 1 s: the day reads as one that never had a record
    assert await store.ledger_read(DAY) == []
    assert await store.ledger_read(DAY, after=first) == []
    assert await store.ledger_read(later) == [(other, b'{"ledger":"r-00000003"}')]
    fresh = [await committed(store, commit(f"r-0000001{n}")) for n in range(3)]
    assert await store.ledger_read(DAY) == [
        (entry_id, b'{"ledger":"r-0000001%d"}' % n) for n, entry_id in enumerate(fresh)
    ]
    ids = [keys.parse_entry_id(entry_id) for entry_id in [first, second, *fresh]]
    assert ids == sorted(set(ids))  # a new stream, its ids still strictly increasing
    fixed_clock.advance(86400 - 1)  # `later`: a day and 1 s since its only commit
    await committed(store, commit("r-00000020"))
    assert later not in store._ledgers  # reclaimed by a commit to another day, unread
    assert await store.ledger_read(later) == []
    assert len(await store.ledger_read(DAY)) == 4


async def test_memory_store_keeps_right_sized_copies_of_orjson_output(
    fixed_clock: FixedClock,
) -> None:
    """orjson's bytes sit in the buffer it wrote into (16 KB for a 700-byte record): kept
    as they come, a decision's ledger record and answer would hold ~20 KB for a day."""
    store = MemoryStore(fixed_clock)
    record = {f"field_{n:02d}": "x" * 10 for n in range(40)}  # ~750 bytes, like a record
    n = 500
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            rid = f"r-{i:08d}"
            await committed(store, commit(rid, response=orjson.dumps({"request_id": rid}),
                                          ledger=orjson.dumps({**record, "request_id": rid})))
        per_commit = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per_commit < 3000, f"{per_commit:.0f} bytes held per commit"
    assert orjson.loads((await ledger(store))[-1])["request_id"] == f"r-{n - 1:08d}"


async def test_memory_feed_lease_and_board_expire_by_its_clock(
    fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore(fixed_clock)
    assert await store.feed_lease("host/1/aa", 3.0)
    await store.feed_publish(b"{}", 3.0)
    fixed_clock.advance(2.9)
    assert not await store.feed_lease("host/2/bb", 3.0)
    assert await store.feed_lease("host/1/aa", 3.0)  # renewed: 3 s from now
    fixed_clock.advance(2.9)
    assert await store.feed_board() is None  # published 5.8 s ago
    assert not await store.feed_lease("host/2/bb", 3.0)
    fixed_clock.advance(0.1)
    assert await store.feed_lease("host/2/bb", 3.0)  # the holder stalled: taken over


async def test_memory_feed_errors_keep_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "FEED_ERRORS_KEPT", 3)
    store = MemoryStore()
    ids = [await store.feed_errors_add(b"[%d]" % n) for n in range(5)]
    assert await store.feed_errors_read() == [(ids[2], b"[2]"), (ids[3], b"[3]"),
                                              (ids[4], b"[4]")]
    assert await store.feed_errors_read(ids[0]) == await store.feed_errors_read()


# --- speculative commits (decided without a snapshot) ----------------------------------


@pytest.mark.parametrize("status", ["registry", "card_block", "holder_block"])
async def test_speculative_commit_conflicts_on_any_holder_status(
    store: Store, status: str
) -> None:
    speculative = commit("spec-0001", nonce=b"nonce-spec-00001", assume_no_status=True,
                         card_no=CARD_NO, concession_ride_cap=4)
    if status == "registry":
        await store.put_holders([(REF, ())])  # even an entry without categories
    elif status == "card_block":
        await store.put_block("card", CARD_NO, Block(reason="lost"))
    else:
        await store.put_block("holder", REF, Block())
    assert await store.commit(speculative) == Conflict(Guard.STATUS)
    # no effect at all: the nonce is unspent, no ride counted, nothing ledgered
    snap = await store.snapshot(query(nonce=b"nonce-spec-00001"))
    assert (snap.nonce_seen, snap.concession_rides_today, snap.stored) == (False, 0, None)
    assert await ledger(store) == []


async def test_speculative_commit_on_an_unknown_holder_applies(store: Store) -> None:
    await store.put_holders([("ab" * 16, (Category("veteran"),))])  # someone else
    await store.put_block("card", "Z99999999", Block())
    speculative = commit("spec-0002", nonce=b"nonce-spec-00002", assume_no_status=True,
                         card_no=CARD_NO, concession_ride_cap=4)
    await committed(store, speculative)
    snap = await store.snapshot(query(nonce=b"nonce-spec-00002"))
    assert (snap.nonce_seen, snap.concession_rides_today) == (True, 1)
