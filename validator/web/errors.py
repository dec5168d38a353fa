"""HTTP errors that are not decisions (protocol §4), in one place.

Handlers raise `ApiError`; the middleware turns it, a `StoreUnavailable` from the core
and aiohttp's own 404/405 into the protocol's JSON error bodies. `refusal` is that
rendering, and the terminal API's core (`terminals.TerminalApi`) calls it too, so both
HTTP fronts answer an error with the same bytes and count it the same way.

    ApiError
     ├── 400 invalid_request      body not in the schema
     ├── 401 unauthorized         terminal signature / operator token
     ├── 403 terminal_disabled | forbidden
     ├── 404 not_found
     ├── 409 request_id_conflict
     └── 413 payload_too_large
    StoreUnavailable → 503 store_unavailable, with Retry-After
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import orjson
from aiohttp import web

from validator.metrics import Metrics
from validator.state.store import StoreUnavailable
from validator.web.appkeys import METRICS, SETTINGS

log = logging.getLogger("validator.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def invalid(detail: str) -> ApiError:
    return ApiError(400, "invalid_request", detail)


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


# aiohttp's own errors, and the lean front's (validator/web/front.py): `error` codes.
HTTP_ERRORS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 431: "headers_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (ApiError, StoreUnavailable) as exc:
        status, body, headers = refusal(exc, request.app[METRICS],
                                        request.app[SETTINGS].retry_after_s)
        return web.Response(status=status, body=body, content_type="application/json",
                            headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = HTTP_ERRORS.get(exc.status, "http_error")
        request.app[METRICS].http_errors.labels(str(exc.status), error).inc()  # as the lean front
        allow = exc.headers.get("Allow")  # a 405 must say what is allowed (RFC 9110 §15.5.6)
        return json_error(exc.status, error, exc.reason,
                          headers={"Allow": allow} if allow else None)
