"""One table of request heads, sent as raw bytes to each port: both answer alike.

The limits are `HttpLimits` (validator/web/http_limits.py), which both fronts are given;
`Host` and the HTTP version follow RFC 9112. A refusal is the protocol's JSON error and
closes the connection; anything after a `Connection: close` request is never answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.web.harness import Service
from tests.web.raw_http import (
    PATH,
    Response,
    assert_closed,
    assert_silent,
    connect,
    read_response,
    signed_headers,
    validation_body,
)
from validator.web.http_limits import DEFAULT_LIMITS

LIMITS = DEFAULT_LIMITS
memory = pytest.mark.parametrize("service", ["memory"], indirect=True)


@dataclass(frozen=True)
class Row:
    status: int
    error: str | None  # the JSON error code of a refusal
    closes: bool  # the connection is closed after the answer


def _request(service: Service, *, version: str = "1.1", hosts: int = 1,
             extra: list[tuple[str, str]] | None = None, target: str = PATH) -> bytes:
    """A signed validation as raw bytes, its head shaped by the arguments."""
    body = validation_body(service)
    lines = [f"POST {target} HTTP/{version}"] + ["Host: 127.0.0.1"] * hosts
    lines += [f"{k}: {v}" for k, v in signed_headers(service, body).items()]
    lines += [f"{k}: {v}" for k, v in extra or []]
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def _pad(count: int, size: int) -> list[tuple[str, str]]:
    return [(f"X-Pad-{i}", "p" * size) for i in range(count)]


OK = Row(200, None, False)
REFUSED = Row(400, "invalid_request", True)
TOO_LARGE = Row(431, "headers_too_large", True)
LINE = LIMITS.max_line_bytes

CASES: dict[str, tuple[Callable[[Service], bytes], Row]] = {
    "well formed": (lambda s: _request(s), OK),
    "no Host": (lambda s: _request(s, hosts=0), REFUSED),
    "two Hosts": (lambda s: _request(s, hosts=2), REFUSED),
    "HTTP/1.0 without Host": (lambda s: _request(s, version="1.0", hosts=0),
                              Row(200, None, True)),
    "HTTP/1.0 with two Hosts": (lambda s: _request(s, version="1.0", hosts=2), REFUSED),
    "HTTP/0.9": (lambda s: _request(s, version="0.9"), REFUSED),
    "HTTP/2.0": (lambda s: _request(s, version="2.0"), REFUSED),
    "HTTP/1.2": (lambda s: _request(s, version="1.2"), REFUSED),
    "HTTP/3.0": (lambda s: _request(s, version="3.0"), REFUSED),
    "a header line near the limit": (lambda s: _request(s, extra=_pad(1, LINE - 200)), OK),
    "a header line over the limit": (lambda s: _request(s, extra=_pad(1, LINE + 200)),
                                     TOO_LARGE),
    "request line over the limit": (lambda s: _request(s, target=PATH + "?" + "q" * LINE),
                                    TOO_LARGE),
    "header lines up to the count": (
        lambda s: _request(s, extra=_pad(LIMITS.max_headers - 10, 20)), OK),
    "header lines over the count": (
        lambda s: _request(s, extra=_pad(LIMITS.max_headers + 1, 20)), TOO_LARGE),
    "a head over the size, each line under": (
        lambda s: _request(s, extra=_pad(LIMITS.max_head_bytes // (LINE // 2) + 1,
                                         LINE // 2)), TOO_LARGE),
}


async def _answer(reader: asyncio.StreamReader, http10: bool) -> Response:
    """One answer; its status line HTTP/1.1 (aiohttp's port answers an HTTP/1.0 request
    in HTTP/1.0), never the version of an unsupported request line."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
    version = head[:9]
    assert version == b"HTTP/1.1 " or (http10 and version == b"HTTP/1.0 "), head[:40]
    feed = asyncio.StreamReader()
    feed.feed_data(b"HTTP/1.1 " + head[9:])
    answer = await read_response(feed, head_only=True)
    answer.body = await asyncio.wait_for(
        reader.readexactly(int(answer.headers["content-length"])), 5.0)
    if version == b"HTTP/1.0 ":
        answer.headers.setdefault("connection", "close")  # HTTP/1.0's default
    return answer


@memory
@pytest.mark.parametrize("case", list(CASES))
async def test_both_ports_answer_a_head_alike(service: Service, case: str) -> None:
    make, row = CASES[case]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(make(service))
        answer = await _answer(reader, http10=case.startswith("HTTP/1.0"))
        assert answer.status == row.status, answer.body[:300]
        if row.error is not None:
            assert answer.json()["error"] == row.error
            assert set(answer.json()) == {"error", "detail"}
        if row.closes:
            assert answer.headers.get("connection") == "close"
            await assert_closed(reader)
        else:
            writer.write(_request(service))
            assert (await read_response(reader)).status == 200


@memory
@pytest.mark.parametrize("extra", [b"request", b"GARBAGE\r\n\r\n"])
async def test_bytes_after_a_close_request_are_never_answered(
    service: Service, front: str, extra: bytes, request: pytest.FixtureRequest
) -> None:
    if front == "aiohttp":
        # aiohttp's parser refuses bytes after `Connection: close` in the segment that
        # holds the request, and drops the request with them: its port answers 400.
        request.applymarker(pytest.mark.xfail(strict=True, reason="aiohttp's parser"))
    closing = _request(service, extra=[("Connection", "close")])
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(closing + (_request(service) if extra == b"request" else extra))
        answer = await read_response(reader)
        assert (answer.status, answer.headers["connection"]) == (200, "close")
        await assert_closed(reader)


@memory
async def test_a_refusal_leaves_other_connections_alone(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer), \
            connect(service.terminal_url) as (bad_reader, bad_writer):
        bad_writer.write(_request(service, hosts=2))
        assert (await read_response(bad_reader)).status == 400
        writer.write(_request(service))
        assert (await read_response(reader)).status == 200
        await assert_silent(reader)
