"""The state store: its roles, and a memory, a Redis and a Redis Cluster implementation
(one contract)."""

from __future__ import annotations

from validator.clock import Clock, SystemClock
from validator.state.store import Store


class StoreUrlError(ValueError):
    """A --store value that names no store we know."""


async def open_store(
    url: str, *, clock: Clock | None = None, ledger_retention_days: int = 400
) -> Store:
    """`memory` (embedded, this process only), `redis://HOST:PORT/DB` (one Redis) or
    `rediscluster://HOST:PORT[,HOST:PORT…][?options]` (a Redis Cluster's seed nodes).

    Opening never waits for Redis: a service started while Redis is down answers 503
    until it comes back, then recovers by itself.
    """
    if url == "memory":
        from validator.state.memory import MemoryStore

        return MemoryStore(clock or SystemClock(), ledger_retention_days=ledger_retention_days)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from validator.state.redis import RedisStore

        return RedisStore.from_url(url, ledger_retention_days=ledger_retention_days)
    if url.startswith("rediscluster://"):
        from validator.state.rediscluster import ClusterUrlError, RedisClusterStore

        try:
            return RedisClusterStore.from_url(url, ledger_retention_days=ledger_retention_days)
        except ClusterUrlError as exc:
            raise StoreUrlError(f"--store {url!r}: {exc}") from None
    raise StoreUrlError(f"--store {url!r}: expected 'memory', redis://HOST:PORT/DB or "
                        "rediscluster://HOST:PORT[,HOST:PORT…]")
