"""Signed terminal requests for the offline endpoints (protocol §4), from the simulator."""

from __future__ import annotations

import aiohttp

from terminals_sim.signing import sign_headers
from tests.web.harness import Service


async def get_bundle(service: Service, terminal_id: str, since: int | None = None,
                     *, secret: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    path = "/v1/terminal/bundle"
    query = "" if since is None else f"?since={since}"
    headers = sign_headers(terminal_id, secret or service.secrets[terminal_id], "GET", path,
                           b"", int(service.clock.now()))
    async with service.session.get(service.url + path + query, headers=headers) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def post_batch(session: aiohttp.ClientSession, url: str, terminal_id: str,
                     secret: bytes, body: bytes, now: int) -> tuple[int, bytes]:
    path = "/v1/validations:batch"
    headers = sign_headers(terminal_id, secret, "POST", path, body, now)
    async with session.post(url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.read()
