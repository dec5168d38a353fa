"""The terminal API: `POST /v1/validations` (protocol §4). Parse, call the core, answer."""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from validator.decide import ValidationRequest
from validator.state.store import StoreUnavailable
from validator.web.appkeys import CLOCK, CONFIG, DECIDER, KEYSET, LIVE_FEED, METRICS
from validator.web.auth import authenticate_terminal
from validator.web.errors import ApiError
from validator.web.schema import parse_validation

MAX_BODY_BYTES = 16 * 1024


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to be larger than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"body over {limit} bytes")
    content = request.content
    if content.is_eof():
        # The whole body came in with the head (a terminal's request is one TCP segment):
        # take it without an await, an iterator and a read that only finds the end.
        body = content.read_nowait()
        if len(body) > limit:
            raise ApiError(413, "payload_too_large", f"body over {limit} bytes")
        return body
    chunks, size = [], 0
    async for chunk in content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def post_validation(request: web.Request) -> web.Response:
    """The handler, and the terminal error watcher: a request answered with an HTTP error
    leaves no ledger record, so the dashboard's board is told of it here (a bad terminal
    signature is a fraud signal; the rest count in the terminal's error rate)."""
    started = time.perf_counter()
    app = request.app
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
        body_sha256 = hashlib.sha256(body).hexdigest()  # signed over, and the idempotency key
        terminal = authenticate_terminal(request, body_sha256, app[CONFIG].terminals,
                                         app[KEYSET], app[CLOCK].now())
        parsed = parse_validation(body)
        outcome = await app[DECIDER].validate(ValidationRequest(
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
            app[METRICS].fraud_signals.labels("bad_terminal_signature").inc()
        _note_error(request, exc.status)
        raise
    except StoreUnavailable:
        _note_error(request, 503)
        raise
    if outcome.record is not None:
        app[METRICS].record_decision(outcome.record, time.perf_counter() - started)
    return web.Response(body=outcome.response, content_type="application/json")


def _note_error(request: web.Request, status: int) -> None:
    feed = request.app.get(LIVE_FEED)
    if feed is not None and status != 413:  # 413 comes before any identity is checked
        feed.board.http_error(request.headers.get("X-Terminal-Id", ""), status,
                              request.app[CLOCK].now())
