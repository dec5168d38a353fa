"""The Redis store rebuilds, once, the listing indexes that older data lacks (real Redis)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from validator.policy.types import Category
from validator.state import codec, keys, open_store
from validator.state.redis import RedisStore
from validator.state.store import Block, Store, StoreUnavailable

VETERAN = (Category("veteran"),)
OLD_REFS = [f"{i:032x}" for i in range(1, 2501)]  # more than one SCAN page
OLD_CARDS = ["A00000001", "A00000002"]


async def _write_old_data(url: str) -> None:
    """Records as a store without the indexes wrote them: keys only, no index entries."""
    client = Redis.from_url(url)
    try:
        await client.mset({keys.holder(ref): codec.encode_categories(VETERAN)
                           for ref in OLD_REFS})
        for card in OLD_CARDS:
            await client.set(keys.block("card", card), codec.encode_block(Block("lost")))
        await client.set(keys.block("holder", OLD_REFS[0]), codec.encode_block(Block("fraud")))
    finally:
        await client.aclose()


async def _all_refs(store: Store) -> list[str]:
    refs: list[str] = []
    after: str | None = None
    while page := await store.list_holders(after, 1000):
        refs += [ref for ref, _ in page]
        after = page[-1][0]
    return refs


async def test_an_index_missing_for_older_data_is_rebuilt_once_at_open(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    await _write_old_data(redis_url)
    newer = f"{9999:032x}"
    writer = RedisStore.from_url(redis_url)
    await writer.put_holders([(newer, VETERAN)])  # written since: the index exists, partial
    await writer.close()
    with caplog.at_level(logging.INFO, logger="validator.state"):
        store = await open_store(redis_url)
    try:
        lines = [r.getMessage() for r in caplog.records if "rebuilt" in r.getMessage()]
        assert lines == [
            "redis: index v1:holders rebuilt: 2501 records found, 2500 ids added",
            "redis: index v1:blocks:card rebuilt: 2 records found, 2 ids added",
            "redis: index v1:blocks:holder rebuilt: 1 records found, 1 ids added"]
        assert await _all_refs(store) == sorted([*OLD_REFS, newer])
        assert [c for c, _ in await store.list_blocks("card")] == OLD_CARDS
        assert [r for r, _ in await store.list_blocks("holder")] == [OLD_REFS[0]]
    finally:
        await store.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="validator.state"):
        again = await open_store(redis_url)
    await again.close()
    assert not [r for r in caplog.records if "rebuilt" in r.getMessage()]


async def test_two_processes_rebuilding_at_once_agree(redis_url: str) -> None:
    await _write_old_data(redis_url)
    one, two = RedisStore.from_url(redis_url), RedisStore.from_url(redis_url)
    try:
        gained = await asyncio.gather(one.rebuild_indexes(), two.rebuild_indexes())
        # each id is added by one of them; together they added every one exactly once
        assert sum(g.get("holders", 0) for g in gained) == len(OLD_REFS)
        assert await _all_refs(one) == OLD_REFS
        assert await one.rebuild_indexes() == {}
    finally:
        await one.close()
        await two.close()


async def test_with_redis_away_at_open_the_first_listing_rebuilds(
        redis_url: str, redis_server: RedisServer) -> None:
    await _write_old_data(redis_url)
    store = RedisStore.from_url(redis_url, timeout_s=0.2)
    try:
        with redis_server.paused(), pytest.raises(StoreUnavailable):
            await store.rebuild_indexes()  # what open_store tries, and lets go
        assert [c for c, _ in await store.list_blocks("card")] == OLD_CARDS
    finally:
        await store.close()
