"""The Redis store's listing indexes, rebuilt once where data predates them.

`list_holders` and `list_blocks` page through sorted sets (`v1:holders`,
`v1:blocks:card`, `v1:blocks:holder`) that every write keeps since they exist. Records
written before then are in no index, so a store whose index was never known complete
scans the matching keys once (SCAN, a page at a time: Redis keeps answering), adds
their ids, and then marks that index complete in `v1:indexed`. Each index is rebuilt
once per deployment, whichever process gets there first.

Two processes rebuilding at once is safe: ZADD of an id already there changes nothing,
and an id added for a record deleted meanwhile is skipped by the listings (they read
the record and leave out an id whose record is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from redis.asyncio import Redis

from validator.state import keys

__all__ = ["INDEXES", "rebuild_missing"]

log = logging.getLogger("validator.state")

SCAN_COUNT = 1000
# (name in the marker hash, the index, the records' key pattern)
INDEXES = (
    ("holders", keys.holder_index(), keys.holder("*")),
    ("blocks:card", keys.block_index("card"), keys.block("card", "*")),
    ("blocks:holder", keys.block_index("holder"), keys.block("holder", "*")),
)

Call = Callable[[], AbstractAsyncContextManager[None]]


async def rebuild_missing(client: Redis, call: Call) -> dict[str, int]:
    """Rebuild every index not yet marked complete; the ids each one gained."""
    async with call():
        done = {_text(name) for name in await client.hkeys(keys.INDEXED)}
    gained = {}
    for name, index, pattern in INDEXES:
        if name not in done:
            scanned, added = await _rebuild(client, call, index, pattern)
            async with call():
                await client.hset(keys.INDEXED, name, "1")
            # A store that had records before the index existed is worth a line; a new
            # store (every CLI command's first open) is not.
            log.log(logging.INFO if scanned else logging.DEBUG,
                    "redis: index %s rebuilt: %d records found, %d ids added",
                    index, scanned, added)
            gained[name] = added
    return gained


async def _rebuild(client: Redis, call: Call, index: str, pattern: str) -> tuple[int, int]:
    prefix = pattern.removesuffix("*")
    cursor, scanned, added = 0, 0, 0
    while True:
        async with call():
            cursor, found = await client.scan(cursor, match=pattern, count=SCAN_COUNT)
            ids = [_text(k)[len(prefix):] for k in found]
            if ids:
                added += int(await client.zadd(index, dict.fromkeys(ids, 0)) or 0)
        scanned += len(ids)
        if cursor == 0:
            return scanned, added


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
