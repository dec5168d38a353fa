"""`Lru`: a bounded least-recently-used map on one plain dict, out of the collector's way.

Why not `functools.lru_cache` or an `OrderedDict`: the cyclic garbage collector. A plain
dict whose keys and values are all untracked objects (str, bytes, int, and C objects
without GC support, such as the CMAC and HMAC contexts of the `cryptography` release the
lock pins — pyproject.toml says why, and `make bench` shows whether the caches are walked
and what a full collection then costs) is itself untracked, so no collection walks it.
Under `functools.lru_cache` the 65,536 diversified card keys were walked by every full
collection (5-10 ms each on the project's VM, every few
seconds under load once the start-up heap was frozen) and by young ones whenever a fresh
tuple key re-tracked its dict. Keys and values that are tracked objects work too; they
just do not get this benefit (an exact tuple of untracked values is let go at its first
collection; a NamedTuple or a dataclass never is).

Eviction goes in batches of `maxsize // 64` (at least one): the oldest key of a plain
dict is `next(iter(d))`, and that walks over every slot deleted before it — the dict
only compacts when it next resizes — so one eviction per insert cost a scan of up to
a third of the table each time: ~13 µs per eviction at 65,536 entries once the cache
had been full for a while, twice per new card tap. A batch pays that scan once. So a
full cache holds between `maxsize - maxsize // 64 + 1` and `maxsize` entries.

Not locked: under the GIL a race between two threads costs at most a miss or an extra
eviction, never a wrong value.
"""

from __future__ import annotations

import gc
import itertools
from typing import Generic, TypeVar

__all__ = ["Lru"]

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most `maxsize` entries (0: remember nothing); `get` makes an entry the newest."""

    __slots__ = ("_batch", "_items", "maxsize")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self._batch = max(1, maxsize // 64)
        self._items: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        """The value for `key` (now the most recent), or None."""
        items = self._items
        value = items.pop(key, None)
        if value is not None:
            items[key] = value  # re-inserted: a dict keeps insertion order, newest last
        return value

    def put(self, key: K, value: V) -> None:
        """Remember `value` for `key` as the newest entry; evict the oldest beyond `maxsize`."""
        if self.maxsize == 0:
            return
        items = self._items
        items.pop(key, None)
        items[key] = value
        if len(items) > self.maxsize:
            # Down to maxsize - batch + 1 (never the key just put: it is the newest).
            excess = len(items) - max(1, self.maxsize - self._batch + 1)
            try:
                oldest = list(itertools.islice(items, excess))
            except RuntimeError:  # another thread changed it mid-walk: evict next time
                return
            for old in oldest:
                items.pop(old, None)

    def tracked_by_gc(self) -> bool:
        """Whether the cyclic collector walks the entries (False while all are untracked)."""
        return gc.is_tracked(self._items)
