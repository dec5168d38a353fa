"""Terminal request signatures (protocol §4) and operator bearer tokens (§5)."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as keyed_hmac

from validator.keyset import KeySet, OperatorToken
from validator.lru import Lru
from validator.policy.model import Terminal
from validator.web.exceptions import ApiError

TIMESTAMP_WINDOW_S = 300


def terminal_string_to_sign(method: str, path: str, timestamp: str, body_sha256: str) -> bytes:
    """METHOD, PATH, X-Timestamp and hex(SHA-256(body)), joined by newlines (§4)."""
    return f"{method}\n{path}\n{timestamp}\n{body_sha256}".encode()


# HMAC-SHA256 contexts already keyed with a terminal's secret. A copy of one costs about
# a third of `hmac.digest`, which looks the algorithm up and keys it on every call, and
# the locked `cryptography` release's contexts are not tracked by the garbage collector
# (the standard library's `hmac.HMAC` is), so the cache stays out of its walks
# (validator/lru.py; `make bench` shows it).
_KEYED: Lru[bytes, keyed_hmac.HMAC] = Lru(8192)


def _keyed_sha256(secret: bytes) -> keyed_hmac.HMAC:
    keyed = _KEYED.get(secret)
    if keyed is None:
        keyed = keyed_hmac.HMAC(secret, hashes.SHA256())
        _KEYED.put(secret, keyed)
    return keyed


def authenticate_terminal(
    terminal_id: str, timestamp: str, signature: str, method: str, path: str,
    body_sha256: str, *, terminals: dict[str, Terminal], keys: KeySet, now: float,
) -> Terminal:
    """The registry's terminal for a correctly signed request; else 401, or 403 if disabled.

    The first three are the request's X-Terminal-Id, X-Timestamp and X-Signature ("" when
    absent), `path` its raw path without the query string. Every 401 looks the same from
    outside, so a caller cannot probe which ids exist.
    """
    terminal = terminals.get(terminal_id)
    secret = keys.terminal_secrets.get(terminal_id)
    if terminal is None or secret is None:
        raise ApiError(401, "unauthorized", "unknown terminal or bad signature")
    # isascii() first: str.isdigit() is also true of "²", which int() refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or \
            abs(now - int(timestamp)) > TIMESTAMP_WINDOW_S:
        raise ApiError(401, "unauthorized", "X-Timestamp missing or more than 300 s off")
    message = terminal_string_to_sign(method, path, timestamp, body_sha256)
    mac = _keyed_sha256(secret).copy()
    mac.update(message)
    expected = mac.finalize().hex()
    if not hmac.compare_digest(expected, signature.lower().encode("ascii", "replace").decode()):
        raise ApiError(401, "unauthorized", "unknown terminal or bad signature")
    if not terminal.enabled:
        raise ApiError(403, "terminal_disabled", f"terminal {terminal_id} is disabled")
    return terminal


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
