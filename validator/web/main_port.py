"""aiohttp's port (every route) held to what the lean front does with bad traffic.

aiohttp's own connection protocol answers a request it cannot parse with a text/plain
400 that quotes the offending bytes, and logs it at ERROR with a traceback and those
bytes again (a bearer token with a stray control byte, an SSN in a bad chunk). It
drops the answer to a client that half-closes after its request, and it serves
HTTP/0.9 and HTTP/2.0 request lines with such a status line. Here:

- `HardenedRequestHandler` (aiohttp's `web.RequestHandler`, subclassed) answers a
  request it cannot parse with the protocol's JSON error — 400 `invalid_request`, or
  431 `headers_too_large` past a limit of `HttpLimits` — counts it in
  `validator_http_errors_total` and logs one rate-limited WARNING with the peer and the
  kind of error, never a byte of the request (`MalformedTrafficLog`). A handler's own
  bug is still logged with its traceback, and answered 500 `internal_error`.
- A peer that shuts its sending side after whole requests gets their answers, then the
  connection is closed (asyncio closes the transport at EOF unless told otherwise).
- A request line of a version other than HTTP/1.0 and 1.1 reaches the app as HTTP/1.1
  marked with `UNSUPPORTED_VERSION`, so `head_check` answers it 400 with an
  HTTP/1.1 status line, and closes.

aiohttp has no option for the connection protocol's class: `install` wraps the app's
server factory (`Application._make_handler`, which `AppRunner` — so `run_app` and the
tests' `TestServer` alike — calls once) to build its `web.Server` with this handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import ERROR

from validator.metrics import Metrics
from validator.web.errors import HTTP_ERRORS, Handler, error_body
from validator.web.http_limits import SUPPORTED_VERSIONS, HttpLimits, host_problem
from validator.web.malformed_log import MalformedTrafficLog

__all__ = ["UNSUPPORTED_VERSION", "HardenedRequestHandler", "handler_args", "head_check",
           "install", "refusal"]

log = logging.getLogger("validator.http")

# The version of a request line that is neither HTTP/1.0 nor 1.1, as "major.minor".
UNSUPPORTED_VERSION = web.RequestKey("unsupported_http_version", str)


class HardenedRequestHandler(web.RequestHandler):
    """One connection on aiohttp's port (see the module docstring)."""

    __slots__ = ("_half_closed", "_malformed", "_metrics")

    def __init__(self, manager: web.Server, *, metrics: Metrics,
                 malformed: MalformedTrafficLog, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._metrics = metrics
        self._malformed = malformed
        self._half_closed = False

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio's: bool | None
        """The peer shut its sending side: answer what it sent whole, then close."""
        idle = not self._messages and (
            (self._waiter is not None and not self._waiter.done())
            or (self._waiter is None and not self._request_in_progress
                and self._request_count == 0))
        if idle:
            return False  # nothing whole to answer: let asyncio close the transport
        self._half_closed = True
        if not self._messages:
            self.close()  # after the answer in progress
        return True  # keep the transport open to write the answers

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if self._half_closed and not self._messages:
            self.close()  # the last request the peer sent is answered
        return answered

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """The answer to a request aiohttp could not parse, or whose handler failed."""
        detail: str | None = None
        if isinstance(exc, HttpProcessingError):
            self._malformed.warn(self.peername, type(exc).__name__)
            too_large = isinstance(exc, LineTooLong) or str(exc.message).startswith(
                "Too many headers")
            status, detail = (431, "request head over the limits") if too_large else \
                (400, "malformed HTTP request")
        elif status == 500:
            log.error("error handling a request", exc_info=exc)  # our bug: its traceback
        if request.writer.output_size > 0:  # part of an answer is out: nothing to add
            raise ConnectionError("an answer was partly sent")
        return refusal(self._metrics, status, detail)


def refusal(metrics: Metrics, status: int, detail: str | None) -> web.Response:
    """A JSON error that closes the connection, counted as the lean front counts it."""
    error = HTTP_ERRORS.get(status, "internal_error")
    metrics.http_errors.labels(str(status), error).inc()
    resp = web.Response(status=status, body=error_body(error, detail),
                        content_type="application/json")
    resp.force_close()
    return resp


def head_check(limits: HttpLimits, metrics: Metrics) -> Middleware:
    """The first middleware: the version, `Host` and head-size rules of `HttpLimits`
    that aiohttp's parser does not apply itself."""

    @web.middleware
    async def check_head(request: web.Request, handler: Handler) -> web.StreamResponse:
        version = request.get(UNSUPPORTED_VERSION)
        if version is not None:
            return refusal(metrics, 400, f"HTTP/{version} is not supported; use HTTP/1.1")
        raw = request.raw_headers
        size = len(request.method) + len(request.raw_path) + 11 + sum(
            len(name) + len(value) + 4 for name, value in raw)
        if size > limits.max_head_bytes:
            return refusal(metrics, 431, "request head over the limits")
        problem = host_problem(sum(name.lower() == b"host" for name, _ in raw),
                               request.version)
        if problem is not None:
            return refusal(metrics, 400, problem)
        return await handler(request)

    return check_head


class _Server(web.Server):
    """aiohttp's server whose connections are `HardenedRequestHandler`s."""

    def __call__(self) -> web.RequestHandler:
        return HardenedRequestHandler(self, loop=self._loop, **self._kwargs)


def handler_args(limits: HttpLimits, metrics: Metrics) -> dict[str, Any]:
    """`web.Application(handler_args=...)`: aiohttp's parser limits from `limits`, and
    what `HardenedRequestHandler` needs."""
    return {"max_line_size": limits.max_line_bytes, "max_field_size": limits.max_line_bytes,
            "max_headers": limits.max_headers, "metrics": metrics,
            "malformed": MalformedTrafficLog(logging.getLogger("validator.http.malformed"))}


def install(app: web.Application) -> None:
    """Serve `app`'s connections with `HardenedRequestHandler` (see the module docstring).
    `app` must have been built with `handler_args(...)`."""
    make_server: Callable[..., web.Server] = app._make_handler

    def make_hardened_server(**kwargs: Any) -> web.Server:
        plain = make_server(**kwargs)
        return _Server(plain.request_handler,
                       request_factory=_versions_marked(plain.request_factory),
                       handler_cancellation=plain.handler_cancellation,
                       loop=plain._loop, **plain._kwargs)

    app._make_handler = make_hardened_server  # type: ignore[method-assign]


_Factory = Callable[[RawRequestMessage, Any, Any, Any, "asyncio.Task[None]"], web.BaseRequest]


def _versions_marked(factory: _Factory) -> _Factory:
    """`factory`, with a request of an unsupported version made HTTP/1.1 and marked, and
    aiohttp's stand-in for a request it could not parse answered in HTTP/1.1 too."""

    def make(message: RawRequestMessage, payload: Any, protocol: Any, writer: Any,
             task: asyncio.Task[None]) -> web.BaseRequest:
        version = message.version
        if message is ERROR:
            return factory(message._replace(version=HttpVersion11), payload, protocol,
                           writer, task)
        if version in SUPPORTED_VERSIONS:
            return factory(message, payload, protocol, writer, task)
        request = factory(message._replace(version=HttpVersion11, should_close=True),
                          payload, protocol, writer, task)
        request[UNSUPPORTED_VERSION] = f"{version.major}.{version.minor}"
        return request

    return make
