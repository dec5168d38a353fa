"""The operator dashboard: the page, its live stream, and the admin lookup.

    GET /                          → 302 /dashboard
    GET /dashboard                 the page (static HTML/JS/CSS, no token needed to load)
    GET /dashboard/static/…        its scripts and styles
    GET /v1/dashboard/whoami       viewer+  the page's sign-in check: role, city, zone, names
    GET /v1/dashboard/snapshot     viewer+  the latest board, as one JSON document
    GET /v1/dashboard/stream       viewer+  Server-Sent Events, one `snapshot` per tick
    GET /v1/dashboard/decisions    admin    ?holder_ref=…|card_no=…[&days=N] (lookup.py)

The stream is read by the page with fetch() so that the token travels in the
`Authorization` header (EventSource cannot set headers, and a token in a URL ends up
in logs). Block/unblock and the settlement CSV are the operator API's own endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from validator.policy.model import City
from validator.state.store import StoreUnavailable
from validator.web.appkeys import (
    CLOCK,
    CONFIG,
    ERROR_REPORTER,
    KEYSET,
    LIVE_FEED,
    METRICS,
    OFFLINE_CONFIG,
    STORE,
)
from validator.web.bearer import authenticate_operator
from validator.web.dashboard.board import LiveBoard
from validator.web.dashboard.feed import LiveFeed
from validator.web.dashboard.lookup import find_decisions, parse_query

STATIC_DIR = Path(__file__).parent / "static"
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
# The page loads nothing from elsewhere and runs no inline script: say so to the browser.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def setup_routes(app: web.Application) -> None:
    """Register the dashboard's routes and its background feed (terminal errors reach
    its board from the terminal handler, `terminals.post_validation`)."""
    app.router.add_get("/", _root)
    app.router.add_get("/dashboard", _page)
    app.router.add_static("/dashboard/static", STATIC_DIR)
    app.router.add_get("/v1/dashboard/whoami", _whoami)
    app.router.add_get("/v1/dashboard/snapshot", _snapshot)
    app.router.add_get("/v1/dashboard/stream", _stream)
    app.router.add_get("/v1/dashboard/decisions", _decisions)
    app.cleanup_ctx.append(_live_feed_ctx)
    app.on_shutdown.append(_release_streams)


async def _live_feed_ctx(app: web.Application) -> AsyncIterator[None]:
    # Registered after the store's context in create_app, so the store is open here.
    config, now = app[CONFIG], app[CLOCK].now()
    board = LiveBoard(config.city, config.terminals, config.engine.local_date(now),
                      started_at=now)
    offline = app.get(OFFLINE_CONFIG)
    if offline is not None:
        board.offline.max_offline_age_s = offline.max_offline_age_s
    feed = LiveFeed(board=board, store=app[STORE], clock=app[CLOCK], metrics=app[METRICS],
                    time_zone=config.city.time_zone, errors=app[ERROR_REPORTER])
    app[LIVE_FEED] = feed
    with contextlib.suppress(StoreUnavailable):
        await feed.tick()  # the first snapshot is there before the first client
    task = asyncio.create_task(feed.run(), name="dashboard-live-feed")
    yield
    feed.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(StoreUnavailable):
        await feed.release()  # the last errors; the next process to tick leads at once


async def _release_streams(app: web.Application) -> None:
    # Open streams would otherwise hold a graceful shutdown for its whole timeout.
    feed = app.get(LIVE_FEED)
    if feed is not None:
        feed.close()


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard")


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "dashboard.html", headers=_PAGE_HEADERS)


async def _whoami(request: web.Request) -> web.Response:
    token = authenticate_operator(request, request.app[KEYSET], admin=False)
    city = request.app[CONFIG].city
    return web.json_response({
        "name": token.name, "role": token.role, "city": city.name, "city_zh": city.name_zh,
        "time_zone": city.time_zone,
        "time_zone_abbr": zone_abbreviation(city.time_zone, request.app[CLOCK].now()),
        "operators": [{"id": o.id, "name": o.name, "name_en": o.name_en} for o in city.operators],
        "venues": venue_names(city),
    })


def zone_abbreviation(time_zone: str, now: float) -> str:
    """The zone's abbreviation now (`CST` for Asia/Shanghai), or its offset when the
    zone has none (`+04`): what the page writes after a time."""
    return dt.datetime.fromtimestamp(now, ZoneInfo(time_zone)).strftime("%Z")


def venue_names(city: City) -> dict[str, dict[str, str | None]]:
    """`spot:S01` / `bus:K2` → the names operators know them by, from config/city.toml.
    A route has no name of its own: it is its number, run by its operator."""
    operators = {o.id: o for o in city.operators}
    venues: dict[str, dict[str, str | None]] = {
        f"spot:{s.id}": {"name": s.name, "name_en": s.name_en, "operator": s.operator}
        for s in city.spots}
    for r in city.routes:
        operator = operators.get(r.operator)
        venues[f"bus:{r.id}"] = {
            "name": f"{r.id} 路" + (f" · {operator.name}" if operator else ""),
            "name_en": f"Route {r.id}" + (f" · {operator.name_en}" if operator and
                                          operator.name_en else ""),
            "operator": r.operator}
    return venues


async def _snapshot(request: web.Request) -> web.Response:
    authenticate_operator(request, request.app[KEYSET], admin=False)
    return web.json_response(request.app[LIVE_FEED].snapshot,
                             headers={"Cache-Control": "no-store"})


async def _stream(request: web.Request) -> web.StreamResponse:
    authenticate_operator(request, request.app[KEYSET], admin=False)
    feed = request.app[LIVE_FEED]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx and friends: pass each event on at once
    })
    await response.prepare(request)
    seq = 0
    with contextlib.suppress(ConnectionResetError):
        await response.write(b"retry: 2000\n\n")
        while not feed.closed:
            if feed.seq > seq:
                seq = feed.seq
                await response.write(feed.frame)  # the same bytes for every client
            elif not await feed.wait(seq, KEEPALIVE_S):
                await response.write(b": keepalive\n\n")
    return response


async def _decisions(request: web.Request) -> web.Response:
    authenticate_operator(request, request.app[KEYSET], admin=True)
    query = parse_query(dict(request.query))
    today = request.app[CONFIG].engine.local_date(request.app[CLOCK].now())
    found = await find_decisions(request.app[STORE], query, today)
    return web.json_response(found, headers={"Cache-Control": "no-store"})
