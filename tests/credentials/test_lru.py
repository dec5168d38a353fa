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
