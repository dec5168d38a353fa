"""`Lru`: bounded, least recently used first out, and invisible to the cyclic collector."""

from __future__ import annotations

import gc

import pytest

from validator.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now newer than b
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    cache.put("a", 4)  # replacing keeps one entry and makes it the newest
    cache.put("d", 5)
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (4, None, 5)


def test_a_full_cache_evicts_the_oldest_in_batches() -> None:
    cache: Lru[int, int] = Lru(640)  # batches of 10
    for i in range(640):
        cache.put(i, i)
    assert len(cache) == 640
    assert cache.get(0) == 0  # now the newest: survives the batch
    cache.put(640, 640)
    assert len(cache) == 631  # the ten oldest went at once: 1 to 10
    assert [cache.get(i) for i in (0, 1, 10, 11, 640)] == [0, None, None, 11, 640]
    for i in range(641, 650):
        cache.put(i, i)
    assert len(cache) == 640  # filled up again, nothing more evicted
    cache.put(650, 650)
    assert len(cache) == 631 and cache.get(650) == 650
    single: Lru[str, int] = Lru(1)
    single.put("a", 1)
    single.put("b", 2)
    assert (single.get("a"), single.get("b"), len(single)) == (None, 2, 1)


def test_size_zero_remembers_nothing_and_a_negative_size_is_refused() -> None:
    cache: Lru[str, int] = Lru(0)
    cache.put("a", 1)
    assert (cache.get("a"), len(cache)) == (None, 0)
    with pytest.raises(ValueError, match="maxsize"):
        Lru(-1)


def test_untracked_keys_and_values_keep_it_out_of_every_collection() -> None:
    cache: Lru[str, bytes] = Lru(1000)
    for i in range(2000):
        cache.put(f"card-{i}", i.to_bytes(16, "big"))
        cache.get(f"card-{i // 2}")
    gc.collect()
    assert not cache.tracked_by_gc()
    cache.put("one more", b"x")
    assert not cache.tracked_by_gc()  # never tracked at all, not only after a collection
    tracked: Lru[str, tuple[int, list[int]]] = Lru(10)
    tracked.put("a", (1, [2]))  # works, but the collector now walks it
    assert tracked.tracked_by_gc()
