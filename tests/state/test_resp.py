"""`RespClient` against a real redis-server: pipelining, FIFO replies, errors, outages.

Each test checks, on teardown, that the client left no task behind and that the event
loop logged nothing (a future whose exception nobody retrieved is logged, not warned).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop

from tests.conftest import RedisServer
from validator.state.resp import Address, NoScriptError, RespClient, RespError, parse_url

MakeClient = Callable[..., RespClient]


@pytest.fixture
async def make_client(redis_url: str) -> AsyncIterator[MakeClient]:
    """`make_client(url=redis_url, **options)`: clients closed after the test, which must
    leave no task behind and nothing logged by the event loop (a future whose exception
    nobody retrieved is logged when collected, not warned)."""
    logged: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: logged.append(context))
    made: list[RespClient] = []

    def make(url: str = redis_url, **options: Any) -> RespClient:
        made.append(RespClient(url, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()
    gc.collect()
    loop.set_exception_handler(None)
    assert logged == []
    assert asyncio.all_tasks() == {asyncio.current_task()}  # clients own no task


@pytest.fixture
def client(make_client: MakeClient) -> RespClient:
    return make_client(timeout_s=1.0)


def info(server: RedisServer, field: str) -> int:
    for line in server.command("INFO", "stats").decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":")[1])
    raise KeyError(field)


async def test_concurrent_calls_leave_in_one_write(
    redis_server: RedisServer, client: RespClient
) -> None:
    await client.execute("PING")  # connected
    reads = info(redis_server, "total_reads_processed")
    values = await asyncio.gather(*(client.execute("SET", f"k{i}", i, "GET") for i in range(200)))
    await asyncio.gather(*(client.execute("SET", f"k{i}", -i) for i in range(200)))
    answers = await asyncio.gather(*(client.execute("GET", f"k{i}") for i in range(200)))
    assert values == [None] * 200
    assert answers == [b"%d" % -i for i in range(200)]  # each reply reached its caller
    # 600 commands in three batches; a few extra reads are the INFO connections themselves
    assert info(redis_server, "total_reads_processed") - reads <= 12
    assert redis_server.command("CLIENT", "LIST").count(b"id=") == 2  # ours and the asker


async def test_error_reply_fails_only_its_own_call(client: RespClient) -> None:
    await client.execute("HSET", "h", "f", "v")
    answers: tuple[Any, ...] = await asyncio.gather(
        client.execute("SET", "s", b"\x00bytes\xff"),
        client.execute("GET", "h"),  # WRONGTYPE
        client.execute("GET", "nothing"),
        client.execute("EVALSHA", "0" * 40, 0),
        return_exceptions=True,
    )
    ok, wrong, missing, script = answers
    assert ok == b"OK" and missing is None
    assert isinstance(wrong, RespError) and str(wrong).startswith("WRONGTYPE")
    assert isinstance(script, NoScriptError)
    assert await client.execute("GET", "s") == b"\x00bytes\xff"
    assert await client.execute("EVAL", "return {1, 'two', ARGV[1]}", 0, 3.5) == [1, b"two", b"3.5"]


async def test_refused_while_down_then_reconnects(
    redis_server: RedisServer, client: RespClient
) -> None:
    assert await client.execute("PING") == b"PONG"
    redis_server.stop()
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await client.execute("PING")
    assert time.monotonic() - started < 0.5  # refused at once, not after the timeout
    redis_server.start()
    assert await client.execute("PING") == b"PONG"


async def test_calls_in_flight_fail_when_the_server_dies(
    redis_server: RedisServer, client: RespClient
) -> None:
    await client.execute("PING")
    redis_server.pause()
    calls = [asyncio.ensure_future(client.execute("INCR", "n")) for _ in range(5)]
    await asyncio.sleep(0.05)  # written, unanswered
    started = time.monotonic()
    redis_server.stop()  # SIGKILL works on a stopped process: the socket is reset
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes), outcomes
    assert time.monotonic() - started < 0.5  # failed by the reset, not by the timeout
    redis_server.start()
    assert await client.execute("INCR", "n") == 1


async def test_a_hung_server_times_out_then_recovers(
    redis_server: RedisServer, make_client: MakeClient
) -> None:
    client = make_client(timeout_s=0.3)
    await client.execute("PING")
    with redis_server.paused():
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(client.execute("PING") for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, TimeoutError) for o in outcomes), outcomes
        assert 0.25 < time.monotonic() - started < 1.0
    assert await client.execute("PING") == b"PONG"  # on a new connection


async def test_callers_waiting_for_a_failed_connect_fail_with_it(
    redis_server: RedisServer, make_client: MakeClient
) -> None:
    """A handshake that hangs (AUTH to a frozen server) costs one timeout, not one each."""
    client = make_client(f"redis://:pw@127.0.0.1:{redis_server.port}/0", timeout_s=0.3)
    with redis_server.paused():
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(client.execute("PING") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, TimeoutError | ConnectionError) for o in outcomes), outcomes
        assert time.monotonic() - started < 0.6  # one attempt's timeout, shared


async def test_a_cancelled_caller_does_not_shift_the_replies(
    redis_server: RedisServer, client: RespClient
) -> None:
    await client.execute("SET", "a", "A")
    await client.execute("SET", "b", "B")
    with redis_server.paused():
        first = asyncio.ensure_future(client.execute("GET", "a"))
        second = asyncio.ensure_future(client.execute("GET", "b"))
        await asyncio.sleep(0.05)
        first.cancel()
    assert await second == b"B"
    assert first.cancelled()
    assert await client.execute("GET", "a") == b"A"


async def test_too_many_calls_in_flight_fail_at_once(
    redis_server: RedisServer, make_client: MakeClient
) -> None:
    client = make_client(max_in_flight=2)
    await client.execute("PING")
    with redis_server.paused():
        waiting = [asyncio.ensure_future(client.execute("PING")) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ConnectionError, match="in flight"):
            await client.execute("PING")
    assert await asyncio.gather(*waiting) == [b"PONG", b"PONG"]


async def test_database_and_password_from_the_url(
    redis_server: RedisServer, make_client: MakeClient
) -> None:
    base = f"127.0.0.1:{redis_server.port}"
    await make_client().execute("CONFIG", "SET", "requirepass", "s3cr%t")
    admin = make_client(f"redis://:s3cr%25t@{base}/0")  # percent-encoded in the URL
    try:
        db3 = make_client(f"redis://:s3cr%25t@{base}/3")
        await db3.execute("SET", "where", "three")
        assert await admin.execute("GET", "where") is None
        assert await db3.execute("GET", "where") == b"three"
        with pytest.raises(RespError, match="NOAUTH"):
            await make_client(f"redis://{base}/0").execute("GET", "where")
        with pytest.raises(ConnectionError, match="handshake"):
            await make_client(f"redis://:wrong@{base}/0").execute("PING")
    finally:
        await admin.execute("FLUSHALL")
        await admin.execute("CONFIG", "SET", "requirepass", "")


async def test_closed_means_closed(make_client: MakeClient) -> None:
    client = make_client()
    connecting = asyncio.ensure_future(client.execute("PING"))
    await asyncio.sleep(0)  # inside the connect
    await client.close()  # no socket may outlive the client (a ResourceWarning would fail)
    with pytest.raises(ConnectionError, match="closed"):
        await connecting
    with pytest.raises(ConnectionError, match="closed"):
        await client.execute("PING")


def test_the_same_on_uvloop(redis_server: RedisServer, redis_url: str) -> None:
    """`serve` runs on uvloop, whose transports are not asyncio's: the essentials again."""

    async def scenario() -> None:
        client = RespClient(redis_url, timeout_s=0.3)
        try:
            assert await asyncio.gather(*(client.execute("INCR", "n") for _ in range(50))) == \
                list(range(1, 51))
            with pytest.raises(RespError, match="WRONGTYPE"):
                await client.execute("HGET", "n", "f")
            redis_server.stop()
            with pytest.raises(ConnectionError):
                await client.execute("PING")
            redis_server.start()
            assert await client.execute("PING") == b"PONG"
            with redis_server.paused(), pytest.raises(TimeoutError):
                await client.execute("PING")
            assert await client.execute("PING") == b"PONG"
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6390/2", Address("127.0.0.1", 6390, db=2)),
        ("redis://localhost", Address("localhost", 6379)),
        ("rediss://u:p%40ss@cache:7000/1", Address("cache", 7000, None, 1, "u", "p@ss", True)),
        ("unix:///run/redis.sock?db=4", Address(path="/run/redis.sock", db=4)),
    ],
)
def test_parse_url(url: str, address: Address) -> None:
    assert parse_url(url) == address


def test_parse_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="not a redis URL"):
        parse_url("http://127.0.0.1:6379")
