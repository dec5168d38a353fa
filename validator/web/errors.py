"""HTTP errors that are not decisions (protocol §4), in one place.

Handlers raise `ApiError`; the middleware turns it, a `StoreUnavailable` from the core
and aiohttp's own 404/405 into the protocol's JSON error bodies.

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

import orjson
from aiohttp import web

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


def json_error(
    status: int, error: str, detail: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, str] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        request.app[METRICS].http_errors.labels(str(exc.status), exc.error).inc()
        return json_error(exc.status, exc.error, exc.detail)
    except StoreUnavailable as exc:
        log.warning("state store unavailable: %s", exc)
        request.app[METRICS].store_errors.inc()
        request.app[METRICS].http_errors.labels("503", "store_unavailable").inc()
        retry = str(request.app[SETTINGS].retry_after_s)
        return json_error(503, "store_unavailable", "the state store cannot be reached",
                          headers={"Retry-After": retry})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, _HTTP_ERRORS.get(exc.status, "http_error"), exc.reason)
