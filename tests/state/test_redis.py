"""Redis-only behaviour of `RedisStore`: outages, recovery, expiry, key layout, cost.

The shared behaviour is in test_contract.py; this file covers what only a real server
can show: a server that goes away or hangs, a server that forgot its scripts, errors and
garbage translated into `StoreUnavailable`, the TTLs and names of what is stored, and
one round trip per snapshot and per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.state.test_contract import CARD_ID, CARD_NO, DAY, OPENED, REF, SPOT, commit, query
from validator.policy.types import Category
from validator.state import keys
from validator.state import redis as redis_module
from validator.state.redis import RedisStore
from validator.state.store import (
    IDEMPOTENCY_TTL_S,
    NONCE_TTL_S,
    USAGE_TTL_S,
    Block,
    Committed,
    StoreUnavailable,
)

FULL: dict[str, Any] = {
    "nonce": b"nonce-probe-1234", "card_id": CARD_ID, "atc": 9, "concession_ride_cap": 4,
    "spot_capacity": 100, "concession_entry": True, "companion_open_at": OPENED,
}  # fmt: skip


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    """Overrides the parametrized contract fixture: Redis only, closed after the test."""
    fresh = RedisStore.from_url(redis_url)
    yield fresh
    await fresh.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client to look at what the store wrote."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def every_call(store: RedisStore) -> list[Callable[[], Awaitable[Any]]]:
    return [
        lambda: store.snapshot(query()),
        lambda: store.commit(commit("down-0001", **FULL)),
        store.ping,
        lambda: store.get_holder(REF),
        lambda: store.put_holders([(REF, ())]),
        lambda: store.delete_holder(REF),
        lambda: store.get_block("card", CARD_NO),
        lambda: store.put_block("card", CARD_NO, Block()),
        lambda: store.delete_block("card", CARD_NO),
        lambda: store.ledger_read(DAY),
        lambda: store.audit_append(b"x"),
        store.audit_read,
        lambda: store.feed_lease("host/1/aa", 3.0),
        lambda: store.feed_release("host/1/aa"),
        lambda: store.feed_publish(b"{}", 3.0),
        store.feed_board,
        lambda: store.feed_errors_add(b"[]"),
        store.feed_errors_read,
    ]


async def test_outage_is_unavailable_then_recovers(
    redis_server: RedisServer, store: RedisStore
) -> None:
    assert isinstance(await store.commit(commit("up-00001", **FULL)), Committed)
    redis_server.stop()
    started = time.monotonic()
    for call in every_call(store):
        with pytest.raises(StoreUnavailable):
            await call()
    assert time.monotonic() - started < 2  # refused connections fail fast
    redis_server.start()  # a new, empty process: the commit script is gone (NOSCRIPT)
    assert isinstance(await store.commit(commit("up-00002", **FULL)), Committed)
    assert (await store.snapshot(query())).nonce_seen
    await store.ping()
    assert await store.put_holders([(REF, ())]) == [True]


async def test_forgotten_scripts_are_loaded_again(
    redis_server: RedisServer, store: RedisStore
) -> None:
    assert isinstance(await store.commit(commit("r-00000001")), Committed)
    assert await store.put_holders([(REF, ())]) == [True]
    assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
    assert isinstance(await store.commit(commit("r-00000002")), Committed)
    assert await store.put_holders([(REF, ())]) == [False]
    assert len(await store.ledger_read(DAY)) == 2  # NOSCRIPT ran nothing: no double entry


async def test_feed_lease_and_board_expire_and_errors_are_capped(
    store: RedisStore, raw: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await store.feed_lease("host/1/aa", 0.2)
    await store.feed_publish(b"{}", 0.2)
    assert 0 < await raw.pttl(keys.FEED_LEASE) <= 200
    assert 0 < await raw.pttl(keys.FEED_BOARD) <= 200
    await store.feed_release("host/2/bb")
    assert await raw.get(keys.FEED_LEASE) == b"host/1/aa"
    await asyncio.sleep(0.3)
    assert await store.feed_board() is None
    assert await store.feed_lease("host/2/bb", 3.0)  # the holder stalled: taken over
    monkeypatch.setattr(redis_module, "FEED_ERRORS_KEPT", 10)
    for n in range(500):
        await store.feed_errors_add(b"[%d]" % n)
    kept = await raw.xlen(keys.FEED_ERRORS)
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): about the cap.
    assert 10 <= kept <= 200, kept
    newest = await store.feed_errors_read(count=1000)
    assert newest[-1][1] == b"[499]" and len(newest) == kept


async def test_hung_server_times_out(redis_server: RedisServer, store: RedisStore) -> None:
    await store.ping()
    with redis_server.paused():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.snapshot(query())
        assert 0.5 < time.monotonic() - started < 3  # the ~1 s socket timeout
    await store.ping()


async def test_calls_in_flight_are_bounded_by_the_pool(
    redis_server: RedisServer, redis_url: str
) -> None:
    small = RedisStore.from_url(redis_url, max_connections=4, timeout_s=0.5)
    try:
        results = await asyncio.gather(*(small.commit(commit(f"r-{n:06}")) for n in range(200)))
        assert all(isinstance(r, Committed) for r in results)
        clients = redis_server.command("CLIENT", "LIST").count(b"id=")
        assert clients <= 4 + 1  # the pool's connections and the one asking
        with redis_server.paused():
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(small.snapshot(query()) for _ in range(8)), return_exceptions=True
            )
            assert all(isinstance(o, StoreUnavailable) for o in outcomes)
            assert time.monotonic() - started < 1.5  # waiting for a slot counts too
        await small.ping()
    finally:
        await small.close()


async def test_errors_and_garbage_are_unavailable(store: RedisStore, raw: Redis) -> None:
    await raw.hset(keys.holder(REF), "not", "a string")  # WRONGTYPE for GET
    with pytest.raises(StoreUnavailable):
        await store.get_holder(REF)
    await raw.set(keys.holder(REF), b"{not json")
    with pytest.raises(StoreUnavailable):
        await store.snapshot(query())
    await raw.set(keys.atc(CARD_ID), b"not a number")  # the script fails on its guard
    with pytest.raises(StoreUnavailable):
        await store.commit(commit("r-00000001", card_id=CARD_ID, atc=5, nonce=b"n-1"))
    assert await raw.exists(keys.nonce(REF, b"n-1"), keys.ledger(DAY)) == 0
    with pytest.raises(ValueError):  # a caller's mistake is not an outage
        await store.ledger_read(DAY, after="0-0; DEL")
    await raw.xadd(keys.ledger(DAY), {"not-r": b"{}"})  # a stream entry without its record
    with pytest.raises(StoreUnavailable):
        await store.ledger_read(DAY)
    await raw.delete(keys.ledger(DAY))
    await raw.set(keys.ledger(DAY), b"a string")  # WRONGTYPE for XRANGE
    with pytest.raises(StoreUnavailable):
        await store.ledger_read(DAY)


async def test_key_names_ttls_and_nothing_personal(store: RedisStore, raw: Redis) -> None:
    ssn, name, token = "11010519491231002X", "张三", "op-token-7f3a9c"
    await store.commit(commit("r-00000001", **FULL))
    await store.commit(commit("r-00000002", companion_use=OPENED))
    await store.put_holders([(REF, (Category("disabled", grade=1),))])
    await store.put_block("card", CARD_NO, Block(reason="lost"))
    await store.put_block("holder", REF, Block(until=dt.date(2026, 12, 31)))
    await store.audit_append(b'{"actor":"admin","action":"block"}')

    expected = {
        keys.idempotency("T-GATE-S03-01", "r-00000001"),
        keys.idempotency("T-GATE-S03-01", "r-00000002"),
        keys.nonce(REF, FULL["nonce"]),
        keys.atc(CARD_ID),
        keys.rides(DAY, REF),
        keys.capacity(DAY, SPOT),
        keys.entered(DAY, SPOT, REF),
        keys.ledger(DAY),
        keys.holder(REF),
        keys.holder_index(),
        keys.block("card", CARD_NO),
        keys.block("holder", REF),
        keys.block_index("card"),
        keys.block_index("holder"),
        keys.AUDIT,
    }  # the companion window was opened, then used: gone
    found = {key.decode() async for key in raw.scan_iter(match="*")}
    assert found == expected
    assert all(re.fullmatch(r"v1:[a-z]+(:[\w-]+)*", key) for key in found)

    ttl = {key: await raw.ttl(key) for key in found}
    assert ttl[keys.nonce(REF, FULL["nonce"])] in range(NONCE_TTL_S - 5, NONCE_TTL_S + 1)
    assert ttl[keys.entered(DAY, SPOT, REF)] in range(USAGE_TTL_S - 5, USAGE_TTL_S + 1)
    assert ttl[keys.rides(DAY, REF)] in range(USAGE_TTL_S - 5, USAGE_TTL_S + 1)
    idem = keys.idempotency("T-GATE-S03-01", "r-00000001")
    assert ttl[idem] in range(IDEMPOTENCY_TTL_S - 5, IDEMPOTENCY_TTL_S + 1)
    assert ttl[keys.ledger(DAY)] in range(400 * 86400 - 5, 400 * 86400 + 1)
    permanent = {key for key, seconds in ttl.items() if seconds == -1}
    assert permanent == {
        keys.atc(CARD_ID), keys.holder(REF), keys.holder_index(), keys.block("card", CARD_NO),
        keys.block("holder", REF), keys.block_index("card"), keys.block_index("holder"),
        keys.AUDIT,
    }  # fmt: skip

    dumped = b"".join([await dump(raw, key) for key in found])
    assert b"lost" in dumped and b'{"ledger":"r-00000002"}' in dumped  # the dump sees values
    for forbidden in (ssn, name, token, "19491231"):
        assert forbidden.encode() not in dumped


async def test_ledger_ttl_is_the_retention_from_the_last_commit(
    redis_url: str, raw: Redis
) -> None:
    store = RedisStore.from_url(redis_url, ledger_retention_days=1)
    try:
        await store.commit(commit("r-00000001"))
        assert await raw.ttl(keys.ledger(DAY)) in range(86400 - 5, 86400 + 1)
        await raw.expire(keys.ledger(DAY), 60)
        await store.commit(commit("r-00000002"))
        assert await raw.ttl(keys.ledger(DAY)) in range(86400 - 5, 86400 + 1)  # refreshed
    finally:
        await store.close()


async def dump(raw: Redis, key: bytes | str) -> bytes:
    """Every byte a key holds, whatever its type (strings, streams, sorted sets here)."""
    if await raw.type(key) == b"zset":
        return b"".join(await raw.zrange(key, 0, -1))
    if await raw.type(key) == b"stream":
        entries = await raw.xrange(key) or []
        parts = [part for _, fields in entries for item in (fields or {}).items() for part in item]
        return b"".join(part if isinstance(part, bytes) else part.encode() for part in parts)
    value = await raw.get(key)
    assert not isinstance(value, str)
    return value or b""


async def test_one_round_trip_per_snapshot_and_commit(
    redis_server: RedisServer, store: RedisStore
) -> None:
    """MONITOR lists every command a client sends (and marks the script's own as `lua`)."""
    await store.commit(commit("warm-0001"))  # connection open, script loaded
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as monitor:
        monitor.sendall(b"MONITOR\r\n")
        assert monitor.recv(5) == b"+OK\r\n"
        await store.snapshot(query())
        await store.commit(commit("r-00000001", **FULL))
        seen = read_until_quiet(monitor)
    sent = [line for line in seen.split(b"\r\n") if line and b" lua]" not in line]
    commands = [line.split(b"] ")[1].split(b" ")[0].lower() for line in sent]
    assert commands == [b'"mget"', b'"evalsha"']


def read_until_quiet(sock: socket.socket) -> bytes:
    sock.settimeout(0.3)
    data = b""
    with contextlib.suppress(TimeoutError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def bench_fields(i: int) -> dict[str, Any]:
    """A commit with every guard, each passing: the most a commit does."""
    return {
        "nonce": b"%d" % i, "card_id": CARD_ID, "atc": 10 + i, "concession_ride_cap": 10**9,
        "spot_capacity": 10**9, "concession_entry": True, "holder_ref": f"{i:032x}",
        "companion_open_at": OPENED + i,
    }  # fmt: skip


@pytest.mark.parametrize("concurrency", [1, 32])
async def test_cost_per_call(store: RedisStore, concurrency: int) -> None:
    """Loopback cost of a snapshot and a commit, best of 3 rounds; `pytest -s` prints it.

    Client CPU (this process only; the server is another process) is what limits a
    validator core: the figure to watch. The assertion is a regression alarm only.
    """
    n, q = 1000, query()
    for label in ("snapshot", "commit"):
        best_wall = best_cpu = float("inf")
        for rnd in range(3):
            taps = [commit(f"b-{rnd}-{i}", **bench_fields(rnd * n + i)) for i in range(n)]
            started, cpu = time.perf_counter(), time.process_time()
            for batch in range(0, n, concurrency):
                chunk = range(batch, min(batch + concurrency, n))
                if label == "snapshot":
                    await asyncio.gather(*(store.snapshot(q) for _ in chunk))
                else:
                    await asyncio.gather(*(store.commit(taps[i]) for i in chunk))
            best_wall = min(best_wall, (time.perf_counter() - started) / n * 1e6)
            best_cpu = min(best_cpu, (time.process_time() - cpu) / n * 1e6)
        print(f"\n{label} x{concurrency}: {best_wall:.0f} µs/call, {best_cpu:.0f} µs client CPU")
        assert best_wall < 5000
    committed_taps = len(await store.ledger_read(DAY, count=10 * n))
    assert committed_taps == 3 * n  # every round's commits were real commits, not conflicts
