"""The OpenAPI 3.1 document of every endpoint, served at `GET /openapi.json` (no token).

The document is data, built once at import from the tables below; a test compares its
paths and methods with the routes the app registers, so a route added without
documentation fails the build.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from validator.web.operator.openapi_schemas import CARD_NO, DATE, HOLDER_REF, SCHEMAS, Schema, ref

OPENAPI = "/openapi.json"

Security = list[dict[str, list[str]]]
_OPERATOR: Security = [{"operatorToken": []}]
_TERMINAL: Security = [{"terminalId": [], "terminalTimestamp": [], "terminalSignature": []}]
_OPEN: Security = []  # no authentication


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ref("Error"), description)


_ERRORS = {
    "400": _error("invalid_request: the detail names the field at fault"),
    "401": _error("unauthorized: no valid operator token"),
    "403": _error("forbidden: this call needs the admin role"),
    "404": _error("not_found"),
    "413": _error("payload_too_large"),
    "503": _error("store_unavailable; retry after Retry-After seconds"),
}


def _op(summary: str, ok: dict[str, dict[str, Any]], errors: tuple[str, ...], *,
        security: Security = _OPERATOR, body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, tag: str = "operator") -> dict[str, Any]:
    """One operation; `ok` holds its own responses and overrides the generic `errors`."""
    responses = {**{code: _ERRORS[code] for code in errors}, **ok}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "security": security,
                          "responses": dict(sorted(responses.items()))}
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, schema: Schema) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: Schema, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _block_path(param: str, schema: Schema, record: str, noun: str) -> dict[str, Any]:
    params = [_path_param(param, schema)]
    return {
        "get": _op(f"Read the block of a {noun} (viewer)",
                   {"200": _json(ref(record), "the block")}, ("400", "401", "404", "503"),
                   params=params),
        "put": _op(f"Block a {noun}, or change its block (admin); audited",
                   {"200": _json(ref(record), "the stored block")},
                   ("400", "401", "403", "413", "503"), params=params,
                   body={"application/json": {"schema": ref("BlockPut")}}),
        "delete": _op(f"Lift the block of a {noun} (admin); audited",
                      {"204": {"description": "lifted"}}, ("400", "401", "403", "404", "503"),
                      params=params),
    }


def _block_list(param: str, schema: Schema, record: str, noun: str) -> dict[str, Any]:
    return {"get": _op(
        f"List blocked {noun}, in order of {param}, a page at a time (viewer)",
        {"200": _json(ref(record), "a page of blocks; `next` is the next page's `after`")},
        ("400", "401", "503"),
        params=[_query("after", {**schema, "description": f"the last {param} of the "
                                 "previous page (exclusive)"}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500,
                                 "default": 100})],
    )}


_JSON_ADMIN = ("400", "401", "403", "413", "503")

PATHS: dict[str, dict[str, Any]] = {
    "/v1/validations": {"post": _op(
        "Validate a card tap or e-card QR (terminal API, protocol §4)",
        {"200": _json(ref("Decision"), "a decision, accept or deny"),
         "401": _error("unauthorized: unknown terminal, bad signature or X-Timestamp "
                       "more than 300 s off"),
         "403": _error("terminal_disabled"),
         "409": _error("request_id_conflict: same request_id, different body")},
        ("400", "413", "503"), security=_TERMINAL, tag="terminal",
        body={"application/json": {"schema": ref("ValidationRequest")}},
    ) | {"description": "Also served alone, with the same answers, on the port of "
                        "`serve --terminal-port` (the lean terminal front; "
                        "docs/architecture.md, \"Two HTTP fronts\")."}},
    "/v1/terminal/bundle": {"get": _op(
        "The signed offline bundle, full or a delta (terminal API, protocol §8)",
        {"200": {"description": "gzip of a COSE_Sign1 over the CBOR payload of §8.1",
                 "content": {"application/x-ssc-bundle": {
                     "schema": {"type": "string", "contentEncoding": "binary"}}}},
         "401": _error("unauthorized: unknown terminal, bad signature or X-Timestamp "
                       "more than 300 s off (a GET signs the empty body)"),
         "403": _error("terminal_disabled"),
         "404": _error("offline_disabled: no config/offline.toml or no bundle key")},
        ("400", "503"), security=_TERMINAL, tag="terminal",
        params=[_query("since", {"type": "string", "pattern": "^[0-9]{1,16}$",
                                 "description": "the seq of the bundle held: a delta"})],
    )},
    "/v1/validations:batch": {"post": _op(
        "Offline records, each decided again and settled once (terminal API, protocol §8.4)",
        {"200": _json({"type": "object", "required": ["results", "applied", "duplicate",
                                                      "rejected"]},
                      "one result per record, by index: applied, duplicate or rejected"),
         "401": _error("unauthorized: unknown terminal, bad signature or X-Timestamp "
                       "more than 300 s off"),
         "403": _error("terminal_disabled"),
         "404": _error("offline_disabled: no config/offline.toml or no bundle key"),
         "413": _error("payload_too_large: over batch_max_bytes or batch_max_records")},
        ("400", "503"), security=_TERMINAL, tag="terminal",
        body={"application/json": {"schema": {
            "type": "object", "required": ["records"],
            "properties": {"records": {"type": "array", "items": {"type": "object"}}}}}},
    )},
    "/healthz": {"get": _op("Liveness", {"200": _json(
        {"type": "object", "properties": {"status": {"const": "ok"}}}, "process up")}, (),
        security=_OPEN, tag="ops")},
    "/readyz": {"get": _op("Readiness: the state store answers", {"200": _json(
        {"type": "object", "properties": {"status": {"const": "ready"}}}, "ready")},
        ("503",), security=_OPEN, tag="ops")},
    "/metrics": {"get": _op("Prometheus metrics", {"200": {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}}}}, (),
        security=_OPEN, tag="ops")},
    OPENAPI: {"get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                         (), security=_OPEN, tag="ops")},
    "/v1/admin/holders/{holder_ref}": {
        "get": _op("Read a holder's registry categories (viewer)",
                   {"200": _json(ref("Holder"), "the holder")}, ("400", "401", "404", "503"),
                   params=[_path_param("holder_ref", HOLDER_REF)]),
        "put": _op("Create or replace a holder's categories (admin); audited",
                   {"200": _json(ref("Holder"), "the stored record")}, _JSON_ADMIN,
                   params=[_path_param("holder_ref", HOLDER_REF)],
                   body={"application/json": {"schema": ref("HolderPut")}}),
        "delete": _op("Remove a holder from the registry (admin); audited",
                      {"204": {"description": "removed"}}, ("400", "401", "403", "404", "503"),
                      params=[_path_param("holder_ref", HOLDER_REF)]),
    },
    "/v1/admin/holders:import": {"post": _op(
        "Import NDJSON registry lines of any size, streamed (admin); audited as one entry",
        {"200": _json(ref("ImportReport"), "counts, and each rejected line's number")},
        ("401", "403", "503"),
        body={"application/x-ndjson": {"schema": ref("ImportLine")}},
    )},
    "/v1/admin/blocked-cards/{card_no}": _block_path("card_no", CARD_NO, "CardBlock", "card"),
    "/v1/admin/blocked-holders/{holder_ref}": _block_path("holder_ref", HOLDER_REF,
                                                          "HolderBlock", "holder"),
    "/v1/admin/blocked-cards": _block_list("card_no", CARD_NO, "CardBlockList", "cards"),
    "/v1/admin/blocked-holders": _block_list("holder_ref", HOLDER_REF, "HolderBlockList",
                                             "holders (holder_ref pseudonyms only)"),
    "/v1/admin/audit": {"get": _op(
        "The audit log of registry and block changes, newest first (viewer)",
        {"200": _json(ref("AuditPage"), "entries")}, ("400", "401", "503"),
        params=[_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100})],
    )},
    "/v1/policy/evaluate": {"post": _op(
        "Dry run of the policy alone; no state touched (viewer)",
        {"200": _json(ref("Evaluation"), "the decision, every offer, the age")},
        ("400", "401", "413"), body={"application/json": {"schema": ref("EvaluateRequest")}},
    )},
    "/v1/policy/what-if": {"post": _op(
        "Replay a day's ledgered scans through a candidate policy (viewer)",
        {"200": _json(ref("WhatIf"), "counts and concessions before and after")},
        ("400", "401", "413", "503"),
        body={"application/json": {"schema": ref("WhatIfRequest")}},
    )},
    "/v1/settlement": {"get": _op(
        "Settlement of a local day from the ledger (viewer); CSV with Accept: text/csv",
        {"200": {"description": "the day's accepted decisions, summed",
                 "content": {"application/json": {"schema": ref("Settlement")},
                             "text/csv": {"schema": {
                                 "type": "string", "description":
                                 "operator,venue,rule,fare_class,count,standard_fen,"
                                 "charged_fen,concession_fen"}}}}},
        ("400", "401", "503"),
        params=[_query("date", DATE, required=True),
                _query("operator", {"type": "string", "pattern": "^[A-Z0-9-]{3,40}$"})],
    )},
}

# The operator dashboard (validator/web/dashboard/routes.py). Its JSON shapes belong to the
# page and change with it, so they are documented as open objects.
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
_OPEN_OBJECT = {"type": "object"}
PATHS.update({
    "/": {"get": _op("Redirect to the dashboard", {"302": {
        "description": "Location: /dashboard"}}, (), security=_OPEN, tag="dashboard")},
    "/dashboard": {"get": _op("The operator page (loads without a token; its calls need one)",
                              {"200": {"description": "HTML", **_HTML}}, (), security=_OPEN,
                              tag="dashboard")},
    "/dashboard/static/{filename}": {"get": _op(
        "The page's scripts and styles", {"200": {"description": "a static file"}}, ("404",),
        security=_OPEN, tag="dashboard",
        params=[_path_param("filename", {"type": "string"})])},
    "/v1/dashboard/whoami": {"get": _op(
        "The caller's token name and role, and the city (viewer)",
        {"200": _json(_OPEN_OBJECT, "name, role, city, time_zone, operators")}, ("401",),
        tag="dashboard")},
    "/v1/dashboard/snapshot": {"get": _op(
        "The live board as one document (viewer)", {"200": _json(_OPEN_OBJECT, "the board")},
        ("401",), tag="dashboard")},
    "/v1/dashboard/stream": {"get": _op(
        "The live board as Server-Sent Events, one `snapshot` event per tick (viewer)",
        {"200": {"description": "text/event-stream",
                 "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
        ("401",), tag="dashboard")},
    "/v1/dashboard/decisions": {"get": _op(
        "A holder's recent decisions, masked (admin)",
        {"200": _json(_OPEN_OBJECT, "the decisions found")}, ("400", "401", "403", "503"),
        tag="dashboard",
        params=[_query("holder_ref", HOLDER_REF), _query("card_no", CARD_NO),
                _query("days", {"type": "integer", "minimum": 1, "maximum": 7, "default": 3})])},
})

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Social-security-card validator (一卡通)", "version": "1",
             "description": "Terminal and operator API; see docs/operator-api.md."},
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "operatorToken": {"type": "http", "scheme": "bearer",
                              "description": "roles viewer and admin (protocol §5)"},
            "terminalId": {"type": "apiKey", "in": "header", "name": "X-Terminal-Id"},
            "terminalTimestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp",
                                  "description": "Unix seconds, within 300 s of the server"},
            "terminalSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                                  "description": "hex HMAC-SHA256(terminal secret, METHOD\\n"
                                                 "PATH\\nX-Timestamp\\nhex(SHA-256(body)))"},
        },
    },
}

_BODY = orjson.dumps(DOCUMENT)


def setup_routes(app: web.Application) -> None:
    app.router.add_get(OPENAPI, get_openapi)


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=_BODY, content_type="application/json")
