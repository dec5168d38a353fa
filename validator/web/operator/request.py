"""Plumbing shared by the operator API's handlers: roles, JSON bodies, query values.

Every operator handler starts with `viewer(request)` or `admin(request)` — before it
looks at the path or the body, so an unauthenticated caller learns nothing from a 400.
The token itself is never logged or echoed; only its name and role reach the audit log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from validator.audit import Actor
from validator.holders.registry import InvalidHolder, parse_date
from validator.keyset import OperatorToken
from validator.web.appkeys import CLOCK, CONFIG, KEYSET
from validator.web.bearer import authenticate_operator
from validator.web.body import parse_json_object, read_limited
from validator.web.exceptions import invalid

MAX_JSON_BODY_BYTES = 64 * 1024


def viewer(request: web.Request) -> Actor:
    """Any valid operator token (401 otherwise): every GET and the two dry runs."""
    return _actor(authenticate_operator(request, request.app[KEYSET], admin=False))


def admin(request: web.Request) -> Actor:
    """An admin token (401 without a valid token, 403 for a viewer)."""
    return _actor(authenticate_operator(request, request.app[KEYSET], admin=True))


def _actor(token: OperatorToken) -> Actor:
    return Actor(token.name, token.role)


async def json_object(
    request: web.Request, limit: int = MAX_JSON_BODY_BYTES, *, empty_ok: bool = False
) -> dict[str, Any]:
    """The body as a JSON object; 413 over `limit`, 400 if not an object.

    With `empty_ok`, an empty body reads as `{}` (a block with neither reason nor until).
    """
    body = await read_limited(request, limit)
    if empty_ok and not body.strip():
        return {}
    return parse_json_object(body)


def query_date(request: web.Request, name: str = "date") -> dt.date:
    """A required `YYYY-MM-DD` query parameter."""
    value = request.query.get(name)
    if value is None:
        raise invalid(f"{name}: required, YYYY-MM-DD")
    return parse_day(value, name)


def parse_day(value: object, name: str) -> dt.date:
    """`registry.parse_date`, the one strict YYYY-MM-DD parser, its error made a 400."""
    try:
        return parse_date(value, name)
    except InvalidHolder as exc:
        raise invalid(str(exc)) from None


def now(request: web.Request) -> float:
    return request.app[CLOCK].now()


def today(request: web.Request) -> dt.date:
    """The city's local date now: the day SSN and `until` checks are made against."""
    return request.app[CONFIG].engine.local_date(now(request))
