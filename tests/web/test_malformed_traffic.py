"""Malformed traffic on either port: one log line at most, never a byte of the request;
and a client that half-closes after its requests still gets every answer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.web.harness import Service
from tests.web.raw_http import (
    PATH,
    assert_closed,
    connect,
    read_response,
    signed_headers,
    validation_body,
)

memory = pytest.mark.parametrize("service", ["memory"], indirect=True)
TOKEN = "tok3n-that-must-never-be-logged"
SSN = "110101195001011234"


def _bad_token() -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN[:5]}\x01{TOKEN[5:]}\r\n"
            "Content-Length: 2\r\n\r\n{}").encode()


def _bad_chunk() -> bytes:
    body = f'{{"ssn":"{SSN}"}}'.encode()
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            "\r\n").encode() + b"3\r\n" + body + b"\r\n0\r\n\r\n"


@memory
@pytest.mark.parametrize("attack", [_bad_token, _bad_chunk])
async def test_a_malformed_request_is_one_line_without_its_bytes(
    service: Service, caplog: pytest.LogCaptureFixture, attack: object
) -> None:
    assert callable(attack)
    caplog.set_level(logging.DEBUG)
    for _ in range(3):  # a burst: the rate limit lets one line through
        async with connect(service.terminal_url) as (reader, writer):
            writer.write(attack())
            answer = await read_response(reader)
            assert answer.status == 400
            assert answer.json() == {"error": "invalid_request",
                                     "detail": "malformed HTTP request"}
            await assert_closed(reader)
    logged = [(r.levelno, r.name, caplog.handler.format(r)) for r in caplog.records]
    for secret in (TOKEN, TOKEN[5:], SSN):
        assert not [line for line in logged if secret in line[2]], logged
    loud = [line for line in logged if line[0] >= logging.WARNING]
    assert len(loud) <= 1, loud
    assert all("\n" not in text for _, _, text in loud), loud
    assert not [line for line in logged if line[1].startswith("aiohttp.server")], logged


@memory
@pytest.mark.parametrize("count", [1, 3])
async def test_a_client_that_half_closes_gets_its_answers(
    service: Service, count: int
) -> None:
    bodies = [validation_body(service) for _ in range(count)]
    requests = [(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 + "".join(f"{k}: {v}\r\n" for k, v in signed_headers(service, body).items())
                 + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                for body in bodies]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(b"".join(requests))
        writer.write_eof()  # shutdown(SHUT_WR): the client has said all it will say
        answers = [await read_response(reader) for _ in bodies]
        assert [a.status for a in answers] == [200] * count
        assert [a.json()["request_id"] for a in answers] == [
            body.split(b'"request_id": "')[1].split(b'"')[0].decode() for body in bodies]
        await assert_closed(reader)


@memory
async def test_a_client_that_half_closes_mid_request_is_closed(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        writer.write_eof()
        await asyncio.wait_for(assert_closed(reader), 3.0)
