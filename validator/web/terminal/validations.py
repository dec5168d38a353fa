"""The terminal API: `POST /v1/validations` (protocol §4), for either HTTP front.

`TerminalApi` is the whole endpoint once a request's body is read: signature, schema,
the decision core, the 409, the error answers and their counters, the fraud signal and
the error watch (an `ErrorSink`: the dashboard's board counts them). It knows nothing
of HTTP machinery; two fronts call it:

- `post_validation` below, aiohttp's handler, on the service's main port;
- `validator/web/terminal/front.py`, the lean terminal front of `serve --terminal-port`.

So a terminal gets the same bytes from either port, and neither front renders an answer
of its own beyond the HTTP errors that come before a request is whole (413 while the
body arrives; the lean front's 400/404/405/431).
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from validator.clock import Clock
from validator.decide import Decider, ValidationRequest
from validator.metrics import Metrics
from validator.state.store import StoreUnavailable
from validator.web.appkeys import TERMINAL_API, TerminalSignatures
from validator.web.body import read_limited
from validator.web.errors import Answer, ErrorSink, refusal
from validator.web.exceptions import ApiError
from validator.web.terminal.schema import parse_validation

__all__ = ["MAX_BODY_BYTES", "VALIDATIONS_PATH", "TerminalApi", "post_validation"]

VALIDATIONS_PATH = "/v1/validations"
MAX_BODY_BYTES = 16 * 1024
JSON = "application/json"


class TerminalApi:
    """`POST /v1/validations` after the body is read, whichever front read it."""

    def __init__(self, *, auth: TerminalSignatures, clock: Clock, decider: Decider,
                 metrics: Metrics, retry_after_s: int, errors: ErrorSink) -> None:
        self._auth = auth
        self._clock = clock
        self._decider = decider
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._errors = errors

    async def answer(self, method: str, path: str, terminal_id: str, timestamp: str,
                     signature: str, body: bytes, started: float) -> Answer:
        """The answer to one request. `path` is the raw path without the query string
        (what the terminal signed); the three strings are the X- headers, "" if absent;
        `started` the `time.perf_counter()` at which the front had the request."""
        try:
            body_sha256 = hashlib.sha256(body).hexdigest()  # signed over; the idempotency key
            terminal = self._auth.authenticate(
                terminal_id, timestamp, signature, method, path, body_sha256,
                now=self._clock.now())
            parsed = parse_validation(body)
            outcome = await self._decider.validate(ValidationRequest(
                terminal_id=terminal.id,
                operator=terminal.operator,
                venue=terminal.venue,
                request_id=parsed.request_id,
                scanned_at=parsed.scanned_at,
                scanned_at_text=parsed.scanned_at_text,
                credential=parsed.credential,
                companion=parsed.companion,
                body_sha256=body_sha256,
            ))
            if outcome.conflict:
                raise ApiError(409, "request_id_conflict",
                               "this request_id was used with a different body")
        except ApiError as exc:
            if exc.status == 401:
                self._metrics.fraud_signals.labels("bad_terminal_signature").inc()
            return self.refuse(exc, terminal_id)
        except StoreUnavailable as exc:
            return self.refuse(exc, terminal_id)
        if outcome.record is not None:
            self._metrics.record_decision(outcome.record, time.perf_counter() - started)
        return Answer(200, outcome.response)

    def refuse(self, exc: ApiError | StoreUnavailable, terminal_id: str) -> Answer:
        """An error answer, counted; the terminal error watcher: a request answered with
        an HTTP error leaves no ledger record, so the dashboard's board is told of it here
        (a bad terminal signature is a fraud signal; the rest count in the terminal's
        error rate). `terminal_id` is the X-Terminal-Id header as sent."""
        answer = refusal(exc, self._metrics, self._retry_after_s)
        if answer.status != 413:  # 413 comes before any identity check
            self._errors.note(terminal_id, answer.status, self._clock.now())
        return answer


async def post_validation(request: web.Request) -> web.Response:
    """aiohttp's front: read the body (or 413), then `TerminalApi.answer`."""
    started = time.perf_counter()
    api = request.app[TERMINAL_API]
    headers = request.headers
    terminal_id = headers.get("X-Terminal-Id", "")
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
    except ApiError as exc:
        answer = api.refuse(exc, terminal_id)
    else:
        answer = await api.answer(request.method, request.rel_url.raw_path, terminal_id,
                                  headers.get("X-Timestamp", ""),
                                  headers.get("X-Signature", ""), body, started)
    return web.Response(status=answer.status, body=answer.body, content_type=JSON,
                        headers=answer.headers)
