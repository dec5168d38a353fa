"""The operator API's registry side (protocol §5): holders, imports, block lists, audit.

Handlers are thin: check the role, parse, call `validator.holders.changes` (which also
writes the audit entry), serialise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from validator import audit
from validator.holders import changes
from validator.holders.registry import InvalidHolder, parse_categories, parse_holder_ref
from validator.state.store import BlockKind
from validator.web.appkeys import KEYSET, STORE
from validator.web.exceptions import ApiError, invalid
from validator.web.operator.request import admin, json_object, now, today, viewer

HOLDER = "/v1/admin/holders/{holder_ref}"
IMPORT = "/v1/admin/holders:import"
BLOCKED_CARD = "/v1/admin/blocked-cards/{card_no}"
BLOCKED_HOLDER = "/v1/admin/blocked-holders/{holder_ref}"
AUDIT = "/v1/admin/audit"

_CHUNK_BYTES = 64 * 1024
DEFAULT_AUDIT_LIMIT = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_routes(app: web.Application) -> None:
    """Register the registry's, the block lists' and the audit log's routes on `app`."""
    app.router.add_get(HOLDER, get_holder)
    app.router.add_put(HOLDER, put_holder)
    app.router.add_delete(HOLDER, delete_holder)
    app.router.add_post(IMPORT, import_holders)
    lists: tuple[tuple[str, BlockKind, str], ...] = (
        (BLOCKED_CARD, "card", "card_no"), (BLOCKED_HOLDER, "holder", "holder_ref"))
    for path, kind, param in lists:
        get, put, delete = _block_handlers(kind, param)
        app.router.add_get(path, get)
        app.router.add_put(path, put)
        app.router.add_delete(path, delete)
    app.router.add_get(AUDIT, get_audit)


# --- the eligibility registry -------------------------------------------------------


def _holder_ref(request: web.Request) -> str:
    try:
        return parse_holder_ref(request.match_info["holder_ref"])
    except InvalidHolder as exc:
        raise invalid(str(exc)) from None


async def get_holder(request: web.Request) -> web.Response:
    viewer(request)
    ref = _holder_ref(request)
    categories = await request.app[STORE].get_holder(ref)
    if categories is None:
        raise ApiError(404, "not_found", f"holder {ref} is not in the registry")
    return web.json_response({"holder_ref": ref,
                              "categories": changes.categories_json(categories)})


async def put_holder(request: web.Request) -> web.Response:
    actor = admin(request)
    ref = _holder_ref(request)
    doc = await json_object(request)
    # The GET representation may be sent back as it is, holder_ref included.
    unknown = set(doc) - {"categories", "holder_ref"}
    if unknown:
        raise invalid(f"unknown field(s) {sorted(unknown)}")
    if "holder_ref" in doc and doc["holder_ref"] != ref:
        raise invalid("holder_ref: differs from the holder_ref of the path")
    if "categories" not in doc:
        raise invalid("categories: required (an empty list clears them)")
    try:
        categories = parse_categories(doc["categories"])
    except InvalidHolder as exc:
        raise invalid(str(exc)) from None
    await changes.put_holder(request.app[STORE], actor, ref, categories, now(request))
    return web.json_response({"holder_ref": ref,
                              "categories": changes.categories_json(categories)})


async def delete_holder(request: web.Request) -> web.Response:
    actor = admin(request)
    ref = _holder_ref(request)
    if not await changes.delete_holder(request.app[STORE], actor, ref, now(request)):
        raise ApiError(404, "not_found", f"holder {ref} is not in the registry")
    return web.Response(status=204)


async def import_holders(request: web.Request) -> web.Response:
    """NDJSON of any size, read as it arrives (never the whole body)."""
    actor = admin(request)
    report = await changes.import_holders(
        request.app[STORE], actor, request.content.iter_chunked(_CHUNK_BYTES),
        request.app[KEYSET].pepper, today(request), now(request),
    )
    return web.json_response(report.as_dict())


# --- block lists --------------------------------------------------------------------


def _block_handlers(kind: BlockKind, param: str) -> tuple[Handler, Handler, Handler]:
    """GET / PUT / DELETE for one block list; `param` names the path's id."""

    def ident_of(request: web.Request) -> str:
        try:
            return changes.parse_block_id(kind, request.match_info[param])
        except InvalidHolder as exc:
            raise invalid(str(exc)) from None

    def not_found(ident: str) -> ApiError:
        return ApiError(404, "not_found", f"{kind} {ident} is not blocked")

    async def get(request: web.Request) -> web.StreamResponse:
        viewer(request)
        ident = ident_of(request)
        block = await request.app[STORE].get_block(kind, ident)
        if block is None:
            raise not_found(ident)
        return web.json_response({param: ident, **changes.block_json(block)})

    async def put(request: web.Request) -> web.StreamResponse:
        actor = admin(request)
        ident = ident_of(request)
        try:
            block = changes.parse_block(await json_object(request, empty_ok=True),
                                        today(request))
        except InvalidHolder as exc:
            raise invalid(str(exc)) from None
        await changes.put_block(request.app[STORE], actor, kind, ident, block, now(request))
        return web.json_response({param: ident, **changes.block_json(block)})

    async def delete(request: web.Request) -> web.StreamResponse:
        actor = admin(request)
        ident = ident_of(request)
        if await changes.delete_block(request.app[STORE], actor, kind, ident,
                                      now(request)) is None:
            raise not_found(ident)
        return web.Response(status=204)

    return get, put, delete


# --- the audit log ------------------------------------------------------------------


async def get_audit(request: web.Request) -> web.Response:
    viewer(request)
    raw = request.query.get("limit", str(DEFAULT_AUDIT_LIMIT))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= audit.MAX_READ):
        raise invalid(f"limit: expected an integer 1-{audit.MAX_READ}")
    entries = await audit.read(request.app[STORE], int(raw))
    return web.json_response({"entries": entries})
