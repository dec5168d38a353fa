"""A terminal's HTTP side: signs each request, retries a timeout with the same request_id."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from terminals_sim.signing import sign_headers

VALIDATIONS_PATH = "/v1/validations"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    raw: bytes


def _parse(raw: bytes) -> dict[str, Any]:
    """The JSON object of a reply; a non-JSON reply (a proxy page, a 500) parses as {}
    so the caller still sees its status instead of a decode error."""
    try:
        parsed = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class TerminalClient:
    """One gate or bus reader talking to the validator over HTTP."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        terminal_id: str,
        secret: bytes,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.terminal_id = terminal_id
        self.secret = secret
        self.timeout_s = timeout_s
        self.retries = retries
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @staticmethod
    def new_request_id() -> str:
        return secrets.token_urlsafe(12)

    def body(
        self, credential: dict[str, Any], scanned_at: str, *, request_id: str | None = None,
        companion: bool = False,
    ) -> bytes:
        doc: dict[str, Any] = {"request_id": request_id or self.new_request_id(),
                               "scanned_at": scanned_at, "credential": credential}
        if companion:
            doc["companion"] = True
        return json.dumps(doc, ensure_ascii=False).encode()

    async def post(self, body: bytes, *, now: int | None = None,
                   path: str = VALIDATIONS_PATH) -> Reply:
        """POST a body, re-signed with a fresh timestamp on each retry after a timeout."""
        for attempt in range(self.retries + 1):
            ts = int(time.time()) if now is None else now
            headers = sign_headers(self.terminal_id, self.secret, "POST", path, body, ts)
            try:
                async with self.session.post(
                    self.base_url + path, data=body, headers=headers,
                    timeout=self._timeout,
                ) as resp:
                    raw = await resp.read()
                    return Reply(resp.status, _parse(raw), raw)
            except (TimeoutError, aiohttp.ServerDisconnectedError):
                if attempt == self.retries:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")
