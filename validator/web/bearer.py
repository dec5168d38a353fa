"""Operator bearer tokens (protocol §5), for the operator API and the dashboard alike."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from validator.keyset import KeySet, OperatorToken
from validator.web.exceptions import ApiError

__all__ = ["authenticate_operator"]


def authenticate_operator(request: web.Request, keys: KeySet, *, admin: bool) -> OperatorToken:
    """The operator token of `Authorization: Bearer …`; 401 if none matches, 403 if a
    viewer calls an admin endpoint. Tokens are compared by SHA-256, in constant time,
    against every entry (no early exit that would time which one matched)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "an operator bearer token is required")
    digest = hashlib.sha256(token.strip().encode("utf-8", "replace")).digest()
    found: OperatorToken | None = None
    for entry in keys.operator_tokens:
        if hmac.compare_digest(entry.sha256, digest):
            found = entry
    if found is None:
        raise ApiError(401, "unauthorized", "unknown operator token")
    if admin and found.role != "admin":
        raise ApiError(403, "forbidden", "this call needs the admin role")
    return found
