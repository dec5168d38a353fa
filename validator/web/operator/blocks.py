"""The block lists as lists: `GET /v1/admin/blocked-cards` and `/v1/admin/blocked-holders`.

Viewer role. A page holds at most `limit` blocks (default 100, at most `MAX_LIMIT`) in
ascending order of id; `next` is the `after` of the following page, `null` on the last
one. Holders appear by `holder_ref` only — a pseudonym, never a name or an SSN — and no
category of anyone is part of a block. `active` says whether the block applies today
(a block whose `until` has passed stays listed until it is lifted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from validator.holders import changes
from validator.holders.ref import is_holder_ref
from validator.state.store import BlockKind
from validator.web.appkeys import STORE
from validator.web.exceptions import invalid
from validator.web.operator.request import today, viewer

BLOCKED_CARDS = "/v1/admin/blocked-cards"
BLOCKED_HOLDERS = "/v1/admin/blocked-holders"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_routes(app: web.Application) -> None:
    """Register both list endpoints."""
    app.router.add_get(BLOCKED_CARDS, _lister("card", "card_no"))
    app.router.add_get(BLOCKED_HOLDERS, _lister("holder", "holder_ref"))


def parse_limit(raw: str | None) -> int:
    """`limit` from the query: an integer 1–MAX_LIMIT, DEFAULT_LIMIT if absent."""
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_LIMIT):
        raise invalid(f"limit: expected an integer 1-{MAX_LIMIT}")
    return int(raw)


def _lister(kind: BlockKind, param: str) -> Handler:
    def parse_after(raw: str | None) -> str | None:
        if raw is None:
            return None
        valid = changes.is_card_no(raw) if kind == "card" else is_holder_ref(raw)
        if not valid:
            raise invalid("after: expected a card number (9 characters of [A-Z0-9])"
                          if kind == "card" else "after: expected a holder_ref (32 "
                          "lowercase hex characters)")
        return raw

    async def handler(request: web.Request) -> web.StreamResponse:
        viewer(request)
        limit = parse_limit(request.query.get("limit"))
        after = parse_after(request.query.get("after"))
        # One more than asked: whether a next page exists, without a second call.
        found = await request.app[STORE].list_blocks(kind, after, limit + 1)
        page, day = found[:limit], today(request)
        blocks: list[dict[str, Any]] = [
            {param: ident, **changes.block_json(block), "active": block.active_on(day)}
            for ident, block in page]
        more = len(found) > limit
        return web.json_response({"blocks": blocks, "next": page[-1][0] if more else None},
                                 headers={"Cache-Control": "no-store"})

    return handler
