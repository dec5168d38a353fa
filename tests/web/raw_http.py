"""Raw HTTP/1.1 on a TCP connection, for tests that check the bytes a front writes.

Requests are built byte by byte (`raw_request`, `signed_post`), answers read and
checked as they arrive (`read_response`), and the connection's fate asserted
(`assert_closed`, `assert_silent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from terminals_sim.signing import sign_headers
from tests.web.harness import Service, request_id

GATE = "T-GATE-S03-01"
PATH = "/v1/validations"


# --- requests ------------------------------------------------------------------------


def validation_body(service: Service, rid: str | None = None, **override: object) -> bytes:
    """A well-formed validation: a QR of an unsupported scheme, a quick 200 deny."""
    doc: dict[str, object] = {"request_id": rid or request_id(),
                              "scanned_at": service.scanned_at(),
                              "credential": {"type": "essc_qr", "qr": "HC1:6BFOXN"}}
    doc.update(override)
    return json.dumps(doc).encode()


def signed_headers(service: Service, body: bytes, terminal: str = GATE) -> dict[str, str]:
    return sign_headers(terminal, service.secrets.get(terminal, b"\1" * 32), "POST", PATH,
                        body, int(service.clock.now()))


def raw_request(method: str, path: str, headers: dict[str, str | bytes] | None = None,
         body: bytes = b"", *, version: str = "1.1", length: bool = True) -> bytes:
    """One request's bytes; `Content-Length` is added for the body unless `length` is off."""
    lines = [f"{method} {path} HTTP/{version}".encode(), b"Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else
                                               value.encode()))
    if length and (body or method == "POST"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def signed_post(service: Service, body: bytes, **extra: str | bytes) -> bytes:
    """A signed `POST /v1/validations` with `body` (and any extra headers)."""
    return raw_request("POST", PATH, {**signed_headers(service, body), **extra}, body)


# --- responses -----------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False,
                within: float = 5.0) -> Response:
    """One response: status line, headers and the `Content-Length` bytes of body (none
    for a 1xx or when `head_only`, the answer to a HEAD)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, status, _ = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers: dict[str, str] = {}
    for line in lines:
        name, value = line.split(":", 1)
        assert name.lower() not in headers, f"{name} twice in {head!r}"
        headers[name.lower()] = value.strip()
    body = b""
    if int(status) >= 200 and not head_only:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])),
                                      within)
    return Response(int(status), headers, body)


async def assert_closed(reader: asyncio.StreamReader, within: float = 3.0) -> None:
    """The server closes the connection (EOF or a reset) and sent nothing more."""
    try:
        rest = await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        return
    assert rest == b"", rest


async def assert_silent(reader: asyncio.StreamReader, wait_s: float = 0.2) -> None:
    """Nothing arrives for `wait_s`, and the connection is still open."""
    try:
        data = await asyncio.wait_for(reader.read(1), wait_s)
    except TimeoutError:
        return
    pytest.fail(f"expected an open, silent connection; read {data!r}")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                    asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
