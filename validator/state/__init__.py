"""The state store: one protocol, a memory and a Redis implementation (same contract)."""

from __future__ import annotations

from validator.clock import Clock, SystemClock
from validator.state.store import Store


class StoreUrlError(ValueError):
    """A --store value that names no store we know."""


async def open_store(
    url: str, *, clock: Clock | None = None, ledger_retention_days: int = 400
) -> Store:
    """`memory` (embedded, this process only) or `redis://HOST:PORT/DB`.

    Opening never waits for Redis: a service started while Redis is down answers 503
    until it comes back, then recovers by itself.
    """
    if url == "memory":
        from validator.state.memory import MemoryStore

        return MemoryStore(clock or SystemClock(), ledger_retention_days=ledger_retention_days)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from validator.state.redis import RedisStore

        return RedisStore.from_url(url, ledger_retention_days=ledger_retention_days)
    raise StoreUrlError(f"--store {url!r}: expected 'memory' or redis://HOST:PORT/DB")
