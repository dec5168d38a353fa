"""`GET /openapi.json`: served without a token, and in sync with the router.

A route registered without documentation (or documentation of a route that is gone)
fails `test_every_route_is_documented_and_nothing_else`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.admin.client import call
from tests.web.harness import Service

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
DRY_RUNS = {("post", "/v1/policy/evaluate"), ("post", "/v1/policy/what-if")}


def registered_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route; HEAD comes with each GET and is skipped."""
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path += "/{filename}"
        found.add((route.method.lower(), path))
    return found


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items()
            for method in item if method in METHODS}


async def _document(service: Service) -> dict[str, Any]:
    answer = await call(service, "GET", "/openapi.json", role=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    doc: dict[str, Any] = answer.body
    return doc


async def test_every_route_is_documented_and_nothing_else(service: Service) -> None:
    doc = await _document(service)
    assert doc["openapi"] == "3.1.0"
    registered, documented = registered_routes(service.app), documented_routes(doc)
    assert registered - documented == set(), "routes without documentation"
    assert documented - registered == set(), "documentation of routes that do not exist"


async def test_every_reference_resolves(service: Service) -> None:
    doc = await _document(service)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str):
                assert target.startswith("#/"), target
                cursor: Any = doc
                for part in target[2:].split("/"):
                    assert part in cursor, f"unresolved {target}"
                    cursor = cursor[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)


async def test_operations_declare_security_parameters_and_errors(service: Service) -> None:
    doc = await _document(service)
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["responses"] and op["summary"], (method, path)
            for requirement in op["security"]:
                assert set(requirement) <= set(schemes), (method, path)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            operator = {"operatorToken": []} in op["security"]
            if operator:
                assert "401" in op["responses"], (method, path)
            if operator and method != "get" and (method, path) not in DRY_RUNS:
                assert "403" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


async def test_the_terminal_api_documents_its_signature_headers(service: Service) -> None:
    doc = await _document(service)
    op = doc["paths"]["/v1/validations"]["post"]
    names = {doc["components"]["securitySchemes"][s]["name"] for s in op["security"][0]}
    assert names == {"X-Terminal-Id", "X-Timestamp", "X-Signature"}
    assert {"200", "400", "401", "403", "409", "413", "503"} <= set(op["responses"])


async def test_the_what_if_policy_schema_is_the_config_schema(service: Service) -> None:
    doc = await _document(service)
    policy = doc["components"]["schemas"]["Policy"]
    assert set(policy["required"]) == {"version", "companion_window_s", "bus", "spot"}
    assert "PolicyRule" in doc["components"]["schemas"]
