"""The lean terminal front: `POST /v1/validations` on its own port (`serve --terminal-port`).

aiohttp spends about a fifth of a card tap's instructions on its request and response
objects, router, middleware and stream writer (docs/benchmarks.md). This front is an
`asyncio.Protocol` per connection feeding `httptools` (llhttp, the parser of Node.js and
uvicorn) and writing each answer as one buffer; everything a validation means is
`TerminalApi`, shared with aiohttp's handler, so both ports answer a terminal with the
same bytes (docs/protocol.md, §4, "A second port for terminals").

What it does, as HTTP/1.1 asks of a server:

- Requests on one connection are answered strictly in order: a pipelined request waits
  for the one before it. At most `max_queued` wait; beyond that the front stops reading
  until they drain, and likewise while the peer does not read its answers.
- The head is held to `HttpLimits` (validator/web/http_limits.py, as on aiohttp's port):
  its size, each line's and the number of header lines (431); the body is capped at
  16 KiB (413, as soon as `Content-Length` or the bytes received say so); an unparseable
  request is a 400, a version other than HTTP/1.0 and 1.1 a 400, an HTTP/1.1 request
  without `Host` or any with two a 400. All close the connection after the answer (the
  rest of the stream cannot be trusted), and the malformed ones are logged as one
  rate-limited line without a byte of the request (`MalformedTrafficLog`).
  A request target that llhttp passes but is no URL is a 400 too; the connection goes on.
- Its own error answers count in `validator_http_errors_total`, as the API's do.
- `Expect: 100-continue` is answered when the request is next in line and not too big.
- HTTP/1.0 and `Connection: close` are honoured; `Date` and `Content-Length` are on
  every answer; anything but `POST /v1/validations` is 404, or 405 with `Allow: POST`.
- A connection idle for `keep_alive_s`, or a request not whole `read_timeout_s` after its
  first byte (a slow or stalled client), is closed; one sweep a second checks them all.
- `close()` stops accepting, lets the requests already received finish and closes
  every connection as it goes idle, aborting what remains after the timeout.
- A peer that goes away does not cancel its validation in progress (its decision is
  committed and recorded); the requests it had queued behind it are dropped, and a
  terminal's retry with the same request_id gets the recorded answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import http
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

import httptools
from aiohttp import web

from validator.metrics import Metrics
from validator.web.appkeys import METRICS, SETTINGS, TERMINAL_API, TERMINAL_FRONT, TerminalEndpoint
from validator.web.errors import HTTP_ERRORS, Answer, error_body
from validator.web.exceptions import ApiError
from validator.web.http_limits import DEFAULT_LIMITS, HttpLimits, host_problem
from validator.web.malformed_log import MalformedTrafficLog
from validator.web.terminal.validations import MAX_BODY_BYTES, VALIDATIONS_PATH

__all__ = ["DEFAULT_CONNECTION_LIMITS", "MAX_HEAD_BYTES", "ConnectionLimits", "TerminalFront",
           "attach"]

log = logging.getLogger("validator.front")
access_log = logging.getLogger("validator.front.access")

MAX_HEAD_BYTES = DEFAULT_LIMITS.max_head_bytes  # a terminal's head is ~300 bytes


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one connection may hold and how long it may take (`TerminalFront(connection=)`)."""

    max_queued: int = 16  # pipelined requests waiting on one connection before reading pauses
    keep_alive_s: float = 75.0  # as aiohttp's keepalive_timeout
    read_timeout_s: float = 10.0  # first byte to last of one request; a terminal gives
    # up after 0.4 s
    sweep_s: float = 1.0  # how often idle and slow connections are looked for


DEFAULT_CONNECTION_LIMITS = ConnectionLimits()

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii")
                 for s in http.HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_X_TERMINAL_ID, _X_TIMESTAMP, _X_SIGNATURE = b"x-terminal-id", b"x-timestamp", b"x-signature"
_CONTENT_LENGTH, _EXPECT = b"content-length", b"expect"
_VALIDATIONS_URL = VALIDATIONS_PATH.encode("ascii")


def _error(status: int, detail: str, **headers: str) -> Answer:
    """One of the front's own errors, rendered as the middleware renders aiohttp's."""
    return Answer(status, error_body(HTTP_ERRORS[status], detail), headers or None)


_NOT_FOUND = _error(404, "Not Found")
_NOT_ALLOWED = _error(405, "Method Not Allowed", Allow="POST")
_MALFORMED = _error(400, "malformed HTTP request")
_UPGRADE = _error(400, "protocol upgrade is not supported")
_BAD_TARGET = _error(400, "malformed request target")
_HEAD_TOO_LARGE = _error(431, "request head over the limits")
_BODY_TOO_LARGE = ApiError(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")


class _Clock:
    """The `Date` header, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def date(self) -> bytes:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._value


class _Request:
    """One request as it arrives; `answer` is set when it is refused before the API."""

    __slots__ = ("answer", "body", "continue_expected", "headers", "hosts", "http10",
                 "keep_alive", "method", "signature", "size", "started", "terminal_id",
                 "timestamp", "url")

    def __init__(self) -> None:
        self.url = b""
        self.method = ""
        self.terminal_id = self.timestamp = self.signature = b""
        self.body: list[bytes] = []
        self.size = 0
        self.keep_alive = True
        self.http10 = False
        self.continue_expected = False
        self.started = 0.0
        self.headers = self.hosts = 0  # header lines, and of them `Host`
        self.answer: Answer | None = None


def attach(app: web.Application, host: str, port: int, *, reuse_port: bool, grace_s: float,
           limits: HttpLimits = DEFAULT_LIMITS,
           connection: ConnectionLimits = DEFAULT_CONNECTION_LIMITS) -> None:
    """Serve the terminal front on host:port for as long as `app` runs. It starts after
    the store (the app's own context) and, on shutdown, finishes its requests and closes
    before the store does."""

    async def front_ctx(app: web.Application) -> AsyncIterator[None]:
        front = TerminalFront(app[TERMINAL_API], access_log=app[SETTINGS].access_log,
                              metrics=app[METRICS], limits=limits, connection=connection)
        await front.start(host, port, reuse_port=reuse_port)
        log.info("terminal front on http://%s:%d (pid %d)", host, front.port, os.getpid())
        app[TERMINAL_FRONT] = front
        yield
        await front.close(grace_s)

    app.cleanup_ctx.append(front_ctx)


class TerminalFront:
    """The listener: connections, the idle/slow sweep and a graceful close."""

    def __init__(self, api: TerminalEndpoint, *, metrics: Metrics, access_log: bool = False,
                 limits: HttpLimits = DEFAULT_LIMITS,
                 connection: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
                 on_pause: Callable[[str, bool], None] | None = None) -> None:
        self.api = api
        # Told (reason, on) each time a connection's reason to stop reading starts or
        # ends: "queue" (more than `max_queued` requests waiting), "writes" (the socket's
        # buffer is full). An observer, e.g. a test; it can be set once started.
        self.on_pause = on_pause
        self.limits = limits
        self.connection = connection
        self.malformed = MalformedTrafficLog(logging.getLogger("validator.front.malformed"))
        self.access_log = access_log
        self._metrics = metrics
        self.clock = _Clock()
        self.closing = False
        self.connections: set[_Connection] = set()
        self._all_closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.port = 0  # the port bound, once started

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on host:port (0: any free port; `self.port` says which)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self, loop), host, port, reuse_port=reuse_port or None,
            backlog=1024)
        self._sweeper = loop.call_later(self.connection.sweep_s, self._sweep)
        self.port = self._server.sockets[0].getsockname()[1]

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)
        self._sweeper = asyncio.get_running_loop().call_later(self.connection.sweep_s,
                                                             self._sweep)

    def own_error(self, answer: Answer) -> Answer:
        """Count one of the front's own error answers (the API counts its own) in
        `validator_http_errors_total`, as every answer on this port is to a terminal."""
        error = HTTP_ERRORS.get(answer.status, "internal_error")
        self._metrics.http_errors.labels(str(answer.status), error).inc()
        return answer

    def forget(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._all_closed.set()

    async def close(self, grace_s: float) -> None:
        """Stop accepting; finish what was received; close; abort what is left after
        `grace_s` seconds."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections:
            self._all_closed.clear()  # set by any earlier moment without connections
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), grace_s)
        for conn in list(self.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue in order, answer, keep alive or close."""

    def __init__(self, front: TerminalFront, loop: asyncio.AbstractEventLoop) -> None:
        self._front = front
        self._api = front.api
        # Kept: Python 3.11's asyncio.get_running_loop() makes a getpid() system call.
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._request: _Request | None = None  # the one being read
        self._head_bytes = 0
        self._in_head = False
        self._queue: collections.deque[_Request] = collections.deque()
        self._busy = False  # a drain task is answering the queue
        # Held only so that it lives: the event loop keeps weak references to tasks.
        self._drain_task: asyncio.Task[None] | None = None
        self._discard = False  # a closing answer is queued: ignore anything after it
        self._eof = False  # the peer has shut its side: close once the queue is answered
        self._paused = {"queue": False, "writes": False}
        self._since = time.monotonic()  # idle since / reading since

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass, only alike).
        self._transport = cast(asyncio.Transport, transport)
        self._front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.forget(self)
        self._queue.clear()  # the peer is gone: a retry on a new connection is idempotent
        self._transport = None

    def pause_writing(self) -> None:
        self._pause("writes", True)

    def resume_writing(self) -> None:
        self._pause("writes", False)

    def data_received(self, data: bytes) -> None:
        if self._discard:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # refused in on_message_complete
        except httptools.HttpParserError as exc:
            self._refuse_malformed(_MALFORMED, type(exc).__name__)
            return
        if self._in_head and not self._discard:
            # llhttp buffers a header until its end: bound what it may hold.
            self._head_bytes += len(data)
            if self._head_bytes > self._front.limits.max_head_bytes:
                self._refuse_malformed(_HEAD_TOO_LARGE, "request head over the limits")

    def eof_received(self) -> bool:
        """The peer shut its sending side: answer what it sent whole, then close."""
        if self._busy:
            self._eof = True
            return True  # keep the transport open for the answers
        return False  # nothing to answer (a partial request can no longer finish): close

    # --- httptools callbacks (they must not raise) -----------------------------------

    def on_message_begin(self) -> None:
        if self._discard:
            return
        self._request = _Request()
        self._in_head = True
        self._head_bytes = 0
        self._since = time.monotonic()

    def on_url(self, url: bytes) -> None:
        request = self._request
        if request is not None:
            request.url += url
            if len(request.url) > self._front.limits.max_line_bytes:
                self._refuse_malformed(_HEAD_TOO_LARGE, "request line over the limits")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self._request
        if request is None:
            return
        limits = self._front.limits
        self._head_bytes += len(name) + len(value) + 4
        request.headers += 1
        if (self._head_bytes > limits.max_head_bytes or request.headers > limits.max_headers
                or len(name) + len(value) + 2 > limits.max_line_bytes):
            self._refuse_malformed(_HEAD_TOO_LARGE, "request head over the limits")
            return
        name = name.lower()
        if name == b"host":
            request.hosts += 1
        # The first of a repeated header counts, as aiohttp's `headers.get` has it.
        if name == _X_TERMINAL_ID:
            request.terminal_id = request.terminal_id or value
        elif name == _X_TIMESTAMP:
            request.timestamp = request.timestamp or value
        elif name == _X_SIGNATURE:
            request.signature = request.signature or value
        elif name == _CONTENT_LENGTH:
            if value.strip().isdigit() and int(value) > MAX_BODY_BYTES:
                request.answer = self._api.refuse(_BODY_TOO_LARGE, _text(request.terminal_id))
        elif name == _EXPECT:
            request.continue_expected = value.strip().lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        request = self._request
        if request is None:
            return
        self._in_head = False
        parser = self._parser
        request.method = parser.get_method().decode("ascii", "replace")
        request.keep_alive = parser.should_keep_alive()
        version = parser.get_http_version()
        request.http10 = version == "1.0"
        if version not in ("1.0", "1.1"):  # llhttp passes HTTP/0.9 and HTTP/2.0 too
            self._refuse_malformed(_error(400, f"HTTP/{version} is not supported; use HTTP/1.1"),
                                   "unsupported HTTP version")
            return
        problem = host_problem(request.hosts, (1, 0) if request.http10 else (1, 1))
        if problem is not None:
            self._refuse_malformed(_error(400, problem), "Host header")
            return
        if parser.should_upgrade():
            request.answer = self._front.own_error(_UPGRADE)
        if request.answer is not None:  # 413 by Content-Length: do not wait for the body
            self._refuse(request.answer)
        elif request.continue_expected and not self._queue and not self._busy:
            request.continue_expected = False  # sent now, not again when a drain ends
            self._write_raw(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None:
            return
        request.size += len(body)
        if request.size > MAX_BODY_BYTES:
            self._refuse(self._api.refuse(_BODY_TOO_LARGE, _text(request.terminal_id)))
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request, self._request = self._request, None
        if request is None or self._discard:
            return
        request.started = time.perf_counter()
        self._enqueue(request)

    # --- answering, in order ---------------------------------------------------------

    def _refuse(self, answer: Answer) -> None:
        """Answer the request being read with `answer` once those before it are answered,
        then close: nothing after it on this connection is read."""
        if self._discard:
            return
        request = self._request or _Request()
        self._request = None
        self._in_head = False
        request.answer = answer
        request.keep_alive = False
        self._discard = True
        self._enqueue(request)

    def _refuse_malformed(self, answer: Answer, kind: str) -> None:
        """`_refuse` a request that breaks HTTP or a limit, logged as one line (rate-limited)
        naming the peer and `kind`: never a byte of what it sent."""
        if self._discard:
            return
        transport = self._transport
        self._front.malformed.warn(
            transport.get_extra_info("peername") if transport is not None else None, kind)
        self._refuse(self._front.own_error(answer))

    def _enqueue(self, request: _Request) -> None:
        self._queue.append(request)
        if len(self._queue) >= self._front.connection.max_queued:
            self._pause("queue", True)
        if not self._busy:
            self._busy = True
            self._drain_task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and self._transport is not None:
                request = self._queue.popleft()
                answer = request.answer or await self._answer(request)
                close = not request.keep_alive or self._front.closing
                self._write(request, answer, close)
                if close:
                    if self._transport is not None:
                        self._transport.close()
                    return
                if self._paused["queue"] and \
                        len(self._queue) < self._front.connection.max_queued // 2:
                    self._pause("queue", False)
        finally:
            self._busy = False
            if self._request is None:  # idle from now; a request being read keeps its clock
                self._since = time.monotonic()
            reading = self._request
            if reading is not None and reading.continue_expected and not self._in_head:
                reading.continue_expected = False  # its turn has come: 100 Continue
                self._write_raw(_CONTINUE)
            if self._eof and self._transport is not None:
                self._transport.close()

    async def _answer(self, request: _Request) -> Answer:
        if request.url == _VALIDATIONS_URL:  # what every terminal sends: nothing to parse
            path = VALIDATIONS_PATH
        else:
            try:
                path = httptools.parse_url(request.url).path.decode("latin-1")
            except httptools.HttpParserInvalidURLError:  # llhttp let it through; not a URL
                return self._front.own_error(_BAD_TARGET)
            if (unquote(path) if "%" in path else path) != VALIDATIONS_PATH:
                return self._front.own_error(_NOT_FOUND)
        if request.method != "POST":
            return self._front.own_error(_NOT_ALLOWED)
        try:
            return await self._api.answer(
                request.method, path, _text(request.terminal_id), _text(request.timestamp),
                _text(request.signature), b"".join(request.body), request.started)
        except Exception:  # a bug: answer it and drop the connection, do not hang it
            log.exception("terminal front: validation failed")
            request.keep_alive = False
            return self._front.own_error(Answer(500, error_body("internal_error")))

    def _write(self, request: _Request, answer: Answer, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status, body, headers = answer
        head = [_STATUS_LINES[status], b"Content-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode("ascii"), b"\r\nDate: ", self._front.clock.date(), b"\r\n"]
        if headers:
            for name, value in headers.items():
                head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if close:
            head.append(b"Connection: close\r\n")
        elif request.http10:
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        if request.method != "HEAD":
            head.append(body)
        transport.write(b"".join(head))
        if self._front.access_log:
            access_log.info("%s %s %d %d %.1fms", request.method or "-",
                            request.url[:100].decode("latin-1") or "-", status, len(body),
                            (time.perf_counter() - request.started) * 1000
                            if request.started else 0.0)

    def _write_raw(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _pause(self, reason: str, on: bool) -> None:
        if self._front.on_pause is not None:
            self._front.on_pause(reason, on)
        was = any(self._paused.values())
        self._paused[reason] = on
        now = any(self._paused.values())
        if self._transport is None or was == now:
            return
        if now:
            self._transport.pause_reading()
        else:
            self._transport.resume_reading()

    # --- timeouts and shutdown -------------------------------------------------------

    def _idle(self) -> bool:
        return not self._busy and not self._queue and self._request is None

    def expire(self, now: float) -> None:
        """Close the connection if it has been idle too long, or a request is too slow."""
        if self._transport is None:
            return
        limits = self._front.connection
        if self._idle() and now - self._since > limits.keep_alive_s:
            self._transport.close()
        elif self._request is not None and now - self._since > limits.read_timeout_s:
            log.debug("closing a connection whose request took over %s s",
                      limits.read_timeout_s)
            self._transport.abort()

    def close_if_idle(self) -> None:
        if self._transport is not None and self._idle():
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _text(value: bytes) -> str:
    """A header value as aiohttp gives it to a handler (UTF-8, undecodable bytes kept)."""
    return value.decode("utf-8", "surrogateescape")

