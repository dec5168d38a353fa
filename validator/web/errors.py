"""Rendering HTTP errors that are not decisions (protocol §4), in one place.

Handlers raise `ApiError` (validator/web/exceptions.py, which draws the tree); the
middleware turns it, a `StoreUnavailable` from the core (503 `store_unavailable`, with
Retry-After) and aiohttp's own 404/405 into the protocol's JSON error bodies. `refusal`
is that rendering, and the terminal API (`terminal.validations.TerminalApi`) calls it
too, so both HTTP fronts answer an error with the same bytes and count it the same way.
`ErrorSink` is what the terminal API tells of the errors it answered (the dashboard's
reporter implements it), so the terminal path knows nothing of the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from validator.metrics import Metrics
from validator.state.store import StoreUnavailable
from validator.web.exceptions import ApiError

log = logging.getLogger("validator.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorSink(Protocol):
    """Where a terminal request answered with an HTTP error is told (the dashboard's
    board counts them per terminal: such a request leaves no ledger record), and the
    offline terminals' events below, which leave none either."""

    def note(self, terminal_id: str, status: int, at: float, count: int = 1) -> None:
        """`terminal_id` as sent (maybe unregistered), the status or event, its time."""


class ErrorReporting(ErrorSink, Protocol):
    """An `ErrorSink` that sends what it was told on to the store, when asked
    (dashboard.feed.ErrorReporter: the live feed's tick, or a task of its own)."""

    async def report(self) -> None:
        """Send what was noted since the last report (StoreUnavailable: kept for later)."""


# Events told to the error sink that are not HTTP statuses (those are 100–599): the
# dashboard's offline panel counts them (dashboard/offline_board.py).
BUNDLE_FETCHED = -1  # count: fetches
RECORDS_UPLOADED = -2  # count: records applied by the service
OFFLINE_EVENTS = frozenset({BUNDLE_FETCHED, RECORDS_UPLOADED})


def error_body(error: str, detail: str | None = None) -> bytes:
    """`{"error": ..., "detail": ...}`, the body of every error that is not a decision."""
    body: dict[str, str] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return orjson.dumps(body)


def json_error(
    status: int, error: str, detail: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, body=error_body(error, detail),
                        content_type="application/json", headers=headers)


class Answer(NamedTuple):
    """An answer ready for any front to write: status, JSON body, extra headers (a
    decision is `Answer(200, body)`; `refusal` makes the errors)."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None


def refusal(exc: ApiError | StoreUnavailable, metrics: Metrics, retry_after_s: int) -> Answer:
    """Render `exc` and count it (`validator_http_errors_total`; a store failure also in
    `validator_store_errors_total`, and logged)."""
    if isinstance(exc, StoreUnavailable):
        log.warning("state store unavailable: %s", exc)
        metrics.store_errors.inc()
        metrics.http_errors.labels("503", "store_unavailable").inc()
        return Answer(503, error_body("store_unavailable", "the state store cannot be reached"),
                       {"Retry-After": str(retry_after_s)})
    metrics.http_errors.labels(str(exc.status), exc.error).inc()
    return Answer(exc.status, error_body(exc.error, exc.detail))


# aiohttp's own errors, and the lean front's (validator/web/terminal/front.py): `error` codes.
HTTP_ERRORS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 431: "headers_too_large"}


def error_middleware(metrics: Metrics, retry_after_s: int) -> Middleware:
    """The middleware of aiohttp's routes: `ApiError`, `StoreUnavailable` and aiohttp's
    own HTTP errors rendered by `refusal` and `HTTP_ERRORS`, counted in `metrics`."""

    @web.middleware
    async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (ApiError, StoreUnavailable) as exc:
            status, body, headers = refusal(exc, metrics, retry_after_s)
            return web.Response(status=status, body=body, content_type="application/json",
                                headers=headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = HTTP_ERRORS.get(exc.status, "http_error")
            metrics.http_errors.labels(str(exc.status), error).inc()  # as the lean front
            allow = exc.headers.get("Allow")  # a 405 must say what is allowed (RFC 9110 §15.5.6)
            return json_error(exc.status, error, exc.reason,
                              headers={"Allow": allow} if allow else None)

    return render_errors
