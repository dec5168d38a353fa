"""The state store: its roles, and a memory, a Redis and a Redis Cluster implementation
(one contract)."""

from __future__ import annotations

import contextlib

from validator.clock import Clock, SystemClock
from validator.state.store import Store, StoreUnavailable


class StoreUrlError(ValueError):
    """A --store value that names no store we know."""


async def open_store(
    url: str, *, clock: Clock | None = None, ledger_retention_days: int = 400
) -> Store:
    """`memory` (embedded, this process only), `redis://HOST:PORT/DB` (one Redis) or
    `rediscluster://HOST:PORT[,HOST:PORT…][?options]` (a Redis Cluster's seed nodes).

    Opening never waits for Redis: a service started while Redis is down answers 503
    until it comes back, then recovers by itself (the one wait: a Redis that answers
    rebuilds its missing listing indexes once, `reindex.py`). A Redis that answers must be of the
    kind the URL names (`probe.py`): a cluster node behind `redis://`, or a plain Redis
    behind `rediscluster://`, is a StoreUrlError.
    """
    if url == "memory":
        from validator.state.memory import MemoryStore

        return MemoryStore(clock or SystemClock(), ledger_retention_days=ledger_retention_days)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from validator.state.probe import redis_mismatch
        from validator.state.redis import RedisStore

        store = RedisStore.from_url(url, ledger_retention_days=ledger_retention_days)
        if (wrong := await redis_mismatch(url)) is not None:
            await store.close()
            raise StoreUrlError(f"--store {_shown(url)}: {wrong}")
        # data from before an index existed; Redis away now: at the first listing
        with contextlib.suppress(StoreUnavailable):
            await store.rebuild_indexes()
        return store
    if url.startswith("rediscluster://"):
        return await _open_cluster(url, ledger_retention_days)
    raise StoreUrlError(f"--store {url!r}: expected 'memory', redis://HOST:PORT/DB or "
                        "rediscluster://HOST:PORT[,HOST:PORT…]")


async def _open_cluster(url: str, ledger_retention_days: int) -> Store:
    from validator.state.probe import cluster_mismatch
    from validator.state.rediscluster import ClusterUrlError, RedisClusterStore, parse_cluster_url

    try:
        parsed = parse_cluster_url(url)
        store = RedisClusterStore.from_url(url, ledger_retention_days=ledger_retention_days)
    except ClusterUrlError as exc:
        raise StoreUrlError(f"--store {_shown(url)}: {exc}") from None
    wrong = await cluster_mismatch(parsed.nodes, tls=parsed.tls, username=parsed.username,
                                   password=parsed.password)
    if wrong is not None:
        await store.close()
        raise StoreUrlError(f"--store {_shown(url)}: {wrong}")
    return store


def _shown(url: str) -> str:
    """`url` without its password: error messages name the URL, never the secret."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"
