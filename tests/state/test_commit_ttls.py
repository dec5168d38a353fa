"""A commit's own TTLs: an offline record's upload keeps its nonce and idempotency entry
for as long as the deployment takes uploads, not the live scan's minutes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from validator.clock import FixedClock
from validator.state import keys
from validator.state.memory import MemoryStore
from validator.state.redis import RedisStore
from validator.state.store import Commit, Committed, Duplicate, SnapshotQuery

DAY = dt.date(2026, 12, 2)
REF = "ab" * 16
NONCE = b"\x01" * 8
LONG_S = 3 * 86400


def _commit(request_id: str) -> Commit:
    return Commit(terminal_id="T-BUS-K1-001", request_id=request_id,
                  body_sha256=hashlib.sha256(request_id.encode()).hexdigest(),
                  response=b"{}", ledger=b"{}", local_date=DAY, holder_ref=REF, nonce=NONCE,
                  nonce_ttl_s=LONG_S, idempotency_ttl_s=LONG_S)


async def test_memory_keeps_them_for_the_commits_ttls() -> None:
    clock = FixedClock(1_795_000_000)
    store = MemoryStore(clock=clock)
    assert isinstance(await store.commit(_commit("offline-0001")), Committed)
    clock.advance(LONG_S - 10)
    snap = await store.snapshot(SnapshotQuery(terminal_id="T-BUS-K1-001",
                                              request_id="offline-0001", local_date=DAY,
                                              holder_ref=REF, nonce=NONCE))
    assert snap.nonce_seen and snap.stored is not None
    assert isinstance(await store.commit(_commit("offline-0001")), Duplicate)
    clock.advance(20)
    snap = await store.snapshot(SnapshotQuery(terminal_id="T-BUS-K1-001",
                                              request_id="offline-0001", local_date=DAY,
                                              holder_ref=REF, nonce=NONCE))
    assert not snap.nonce_seen and snap.stored is None


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_keeps_them_for_the_commits_ttls(redis_url: str, raw: Redis) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        assert isinstance(await store.commit(_commit("offline-0001")), Committed)
    finally:
        await store.close()
    for key in (keys.nonce(REF, NONCE), keys.idempotency("T-BUS-K1-001", "offline-0001")):
        assert await raw.ttl(key) in range(LONG_S - 5, LONG_S + 1)
