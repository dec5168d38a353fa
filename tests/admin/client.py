"""A small operator client for the tests: bearer token, JSON in, status and body out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy

from tests.web.harness import Service

ADMIN_TOKEN = "admin-token-for-the-operator-api-tests"
VIEWER_TOKEN = "viewer-token-for-the-operator-api-tests"
ADMIN, VIEWER = "admin", "viewer"
_TOKENS = {ADMIN: ADMIN_TOKEN, VIEWER: VIEWER_TOKEN}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON, or the text when the answer is not JSON
    headers: CIMultiDictProxy[str]
    text: str


async def call(
    service: Service, method: str, path: str, *, role: str | None = ADMIN,
    json_body: Any = None, data: bytes | None = None, headers: dict[str, str] | None = None,
) -> Answer:
    """`role` is ADMIN, VIEWER or None (no Authorization header)."""
    sent = dict(headers or {})
    if role is not None:
        sent["Authorization"] = f"Bearer {_TOKENS[role]}"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    async with service.session.request(method, service.url.rstrip("/") + path, data=data,
                                       headers=sent) as resp:
        text = (await resp.read()).decode()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        return Answer(resp.status, body, resp.headers, text)
