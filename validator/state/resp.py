"""A minimal asyncio Redis client for the decision path: RESP2 on one pipelined connection.

redis-py's asyncio client spends 80–100 µs of CPU per call (pool checkout, retry and
observability wrappers, a stream reader, a task wake-up per reply); on a validator core
that is as much as a signature verify. This client does only what the decision path
needs, in about a tenth of that:

- **Auto-pipelining.** `execute` packs its command with hiredis and appends it to an
  output buffer; the buffer is written once per event-loop iteration (`call_soon`), so
  the commands of every request that ran in that iteration leave in one `send`, and
  their replies come back in one `recv`.
- **FIFO replies.** Redis answers the commands of a connection in order, so the replies
  a hiredis `Reader` parses are matched to a deque of futures, oldest first.
- **One deadline timer, not one per call.** Every call waits at most `timeout_s` for its
  reply. Replies come in order, so the oldest call is always the first to be late: a
  single timer watches the head of the queue. A late reply means a hung server (or a
  half-open connection), so the connection is dropped.
- **Failure is connection-wide.** A lost connection, a protocol error or a late reply
  fails every call in flight with `ConnectionError` / `TimeoutError` (both `OSError`s)
  and closes the connection; the next call opens a new one, and calls that queued behind
  a failed attempt fail with it. An error *reply* fails only its own call, with
  `RespError` (`NoScriptError` for NOSCRIPT).

A cancelled caller leaves its future in the queue: its reply is read and dropped, so the
replies behind it still reach their own callers.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

__all__ = ["Address", "NoScriptError", "RespClient", "RespError", "parse_url"]

Arg = str | bytes | int | float


class RespError(Exception):
    """An error reply from the server (`WRONGTYPE …`, a script's error, …)."""


class NoScriptError(RespError):
    """EVALSHA of a script the server does not know (it did not run)."""


def _reply_error(message: str) -> RespError:
    # hiredis calls this for each error reply it parses (rare: no cost on the fast path).
    return NoScriptError(message) if message.startswith("NOSCRIPT") else RespError(message)


@dataclass(frozen=True, slots=True)
class Address:
    """Where and how to connect: TCP `host:port` (TLS if `tls`) or a unix socket `path`."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> Address:
    """`redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), `unix:///path?db=N`."""
    parts = urlsplit(url)
    query = dict(item.partition("=")[::2] for item in parts.query.split("&") if item)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        return Address(path=parts.path, db=int(query.get("db", 0)), username=username,
                       password=password)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a redis URL: {url!r}")
    db = parts.path.strip("/") or query.get("db", "0")
    return Address(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=int(db),
                   username=username, password=password, tls=parts.scheme == "rediss")


class _Connection(asyncio.Protocol):
    """One socket: buffered writes, FIFO replies, the head-of-queue deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader(replyError=_reply_error)
        self._waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()  # (deadline, reply)
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; its reply (or error) arrives in the returned future."""
        reply = self._loop.create_future()
        if not self._out:
            self._loop.call_soon(self._flush)  # once per iteration: the auto-pipeline
        self._out.append(packed)
        self._waiting.append((self._loop.time() + self._timeout_s, reply))
        if self._timer is None:
            self._timer = self._loop.call_at(self._waiting[0][0], self._check_deadline)
        return reply

    def close(self, error: Exception) -> None:
        """Fail every call in flight with `error` and drop the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._out.clear()
        while self._waiting:
            reply = self._waiting.popleft()[1]
            if not reply.done():
                reply.set_exception(error)
        if self._transport is not None:
            self._transport.abort()  # no goodbye: the server may be hung

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport, so no check)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        try:
            while (answer := self._reader.gets()) is not False:
                reply = waiting.popleft()[1]
                if reply.done():  # its caller was cancelled: drop the answer
                    continue
                if isinstance(answer, RespError):
                    reply.set_exception(answer)
                else:
                    reply.set_result(answer)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody sent
            self.close(ConnectionError(f"redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError(f"redis connection lost: {exc or 'closed by the server'}"))

    # --- internals ---

    def _flush(self) -> None:
        if self.closed or not self._out:
            return
        assert self._transport is not None
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._transport.write(data)

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiting or self.closed:
            return
        deadline = self._waiting[0][0]
        if deadline <= self._loop.time():
            self.close(TimeoutError(f"no redis reply within {self._timeout_s} s"))
        else:  # the late call was answered; watch the next oldest
            self._timer = self._loop.call_at(deadline, self._check_deadline)


class RespClient:
    """Auto-pipelined Redis commands on one connection, opened on first use.

    `execute(*args)` sends one command and returns its decoded reply (bytes, int, None,
    lists thereof). It raises `RespError` for an error reply, and an `OSError`
    (`ConnectionError`, `TimeoutError`) when the server cannot be reached, is gone, or
    has not answered within `timeout_s` — or when `max_in_flight` calls already wait.
    """

    def __init__(self, url: str, *, timeout_s: float = 1.0, max_in_flight: int = 10_000) -> None:
        self._address = parse_url(url)
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._conn: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._closed = False
        self._failures = 0  # failed connection attempts so far
        self._last_failure = ""  # why the latest one failed

    def execute(self, *args: Arg) -> Awaitable[Any]:
        """Await it for the reply. On an open connection this is the reply's future itself,
        not a coroutine around it: one frame less to create and to resume per call."""
        conn = self._conn
        if conn is not None and not conn.closed and conn.in_flight < self._max_in_flight:
            return conn.send(hiredis.pack_command(args))  # type: ignore[arg-type]
        return self._execute_connecting(args)

    async def _execute_connecting(self, args: tuple[Arg, ...]) -> Any:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        if conn.in_flight >= self._max_in_flight:
            raise ConnectionError(f"{self._max_in_flight} redis calls already in flight")
        return await conn.send(hiredis.pack_command(args))  # type: ignore[arg-type]

    async def close(self) -> None:
        """Fail the calls in flight and drop the connection; later calls fail too."""
        self._closed = True
        if self._conn is not None:
            self._conn.close(ConnectionError("redis client closed"))
            self._conn = None

    async def _connect(self) -> _Connection:
        """The open connection, or a new one (one attempt at a time; bounded by timeout_s).

        Callers that queued behind an attempt share its outcome: if it failed, they fail
        at once instead of each trying in turn (n callers would wait n timeouts).
        """
        failures_before = self._failures
        async with self._connecting:
            if self._closed:
                raise ConnectionError("redis client closed")
            if self._conn is not None and not self._conn.closed:
                return self._conn  # another caller connected while this one waited
            if self._failures != failures_before:  # failed while this caller waited
                raise ConnectionError(f"redis connect failed: {self._last_failure}")
            return await self._attempt()

    async def _attempt(self) -> _Connection:
        """One attempt: connect, then AUTH / SELECT if the URL asks, all within timeout_s."""
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self._timeout_s)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._open(loop, conn)
                # gather, not a loop: it marks the errors of the replies after a
                # failed one as retrieved, so none is logged as "never retrieved"
                await asyncio.gather(*(conn.send(hiredis.pack_command(command))  # type: ignore[arg-type]
                                       for command in self._handshake()))
        except BaseException as exc:
            conn.close(ConnectionError(f"redis connect failed: {exc!r}"))
            if not isinstance(exc, asyncio.CancelledError):  # a cancelled caller tells nothing
                self._failures += 1
                self._last_failure = repr(exc)
            if isinstance(exc, RespError):  # e.g. a wrong password: unusable all the same
                raise ConnectionError(f"redis refused the handshake: {exc}") from exc
            raise
        if self._closed:  # closed while connecting: keep no socket open
            conn.close(ConnectionError("redis client closed"))
            raise ConnectionError("redis client closed")
        self._conn = conn
        return conn

    async def _open(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        a = self._address
        if a.path is not None:
            await loop.create_unix_connection(lambda: conn, a.path)
        else:
            context = ssl.create_default_context() if a.tls else None
            await loop.create_connection(lambda: conn, a.host, a.port, ssl=context)

    def _handshake(self) -> list[tuple[Arg, ...]]:
        a = self._address
        commands: list[tuple[Arg, ...]] = []
        if a.password is not None:
            user: tuple[Arg, ...] = () if a.username is None else (a.username,)
            commands.append(("AUTH", *user, a.password))
        if a.db:
            commands.append(("SELECT", a.db))
        return commands
