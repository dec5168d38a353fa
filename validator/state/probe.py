"""Is the Redis behind a `--store` URL the kind the URL says: one Redis, or a cluster?

`redis://` pointed at a node of a Redis Cluster would answer MOVED for most keys, and
`rediscluster://` pointed at a plain Redis would never find a slot map: both are
configuration mistakes that waiting cannot fix, so `open_store` refuses them up front
(`StoreUrlError`, exit 2) with what to write instead. One `INFO cluster` per node asked,
within `timeout_s`; a node that does not answer gives no verdict (the service then
starts and answers 503 until the store is there).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from validator.state.resp import RespClient, RespError


async def cluster_enabled(url: str, timeout_s: float = 1.0) -> bool | None:
    """True for a cluster node, False for a plain Redis, None if it does not answer."""
    client = RespClient(url, timeout_s=timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            info = await client.execute("INFO", "cluster")
    except (OSError, RespError):
        return None
    finally:
        await client.close()
    return b"cluster_enabled:1" in info if isinstance(info, bytes) else None


async def redis_mismatch(url: str) -> str | None:
    """Why a `redis://` URL is the wrong kind of store, or None."""
    if await cluster_enabled(url):
        return ("this is a node of a Redis Cluster: use --store rediscluster://HOST:PORT"
                "[,HOST:PORT…] with its nodes")
    return None


async def cluster_mismatch(nodes: tuple[tuple[str, int], ...], *, tls: bool,
                           username: str | None, password: str | None) -> str | None:
    """Why the seed nodes of a `rediscluster://` URL are the wrong kind of store, or None."""
    scheme = "rediss" if tls else "redis"
    auth = "" if password is None else \
        f"{quote(username or '', safe='')}:{quote(password, safe='')}@"
    for host, port in nodes:
        shown = f"[{host}]" if ":" in host else host
        if await cluster_enabled(f"{scheme}://{auth}{shown}:{port}/0") is False:
            return (f"{host}:{port} is a plain Redis, not a cluster node: use --store "
                    f"redis://{shown}:{port}/0")
    return None
