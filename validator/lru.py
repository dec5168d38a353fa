"""`Lru`: a bounded least-recently-used map on one plain dict, out of the collector's way.

Why not `functools.lru_cache` or an `OrderedDict`: the cyclic garbage collector. A plain
dict whose keys and values are all untracked objects (str, bytes, int, and C objects
without GC support, such as cryptography's CMAC contexts) is itself untracked, so no
collection ever walks it. Under `functools.lru_cache` the 65,536 diversified card keys
were walked by every full collection (5-10 ms each on the project's VM, every few
seconds under load once the start-up heap was frozen) and by young ones whenever a fresh
tuple key re-tracked its dict. Keys and values that are tracked objects work too; they
just do not get this benefit (an exact tuple of untracked values is let go at its first
collection; a NamedTuple or a dataclass never is).

Not locked: under the GIL a race between two threads costs at most a miss or an extra
eviction, never a wrong value.
"""

from __future__ import annotations

import gc
from typing import Generic, TypeVar

__all__ = ["Lru"]

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most `maxsize` entries (0: remember nothing); `get` makes an entry the newest."""

    __slots__ = ("_items", "maxsize")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
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
        while len(items) > self.maxsize:
            try:
                del items[next(iter(items))]
            except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                break

    def tracked_by_gc(self) -> bool:
        """Whether the cyclic collector walks the entries (False while all are untracked)."""
        return gc.is_tracked(self._items)
