"""A request's body, read within a limit and parsed as a JSON object: for every audience."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from validator.web.exceptions import ApiError, invalid

__all__ = ["parse_json_object", "read_limited"]


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


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400 (the terminal and operator APIs alike)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid("body: expected a JSON object")
    return doc
