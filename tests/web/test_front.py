"""The lean terminal front (validator/web/terminal/front.py) as HTTP/1.1 asks of a server.

Most tests speak raw TCP to the front's port, so what is checked is the bytes on the
wire: pipelining in order, the head and body limits, 100-continue, HTTP/1.0 and
`Connection: close`, `Date` and `Content-Length`, the idle and slow-request timeouts, a
graceful close, a peer that goes away mid-validation, and undecodable header bytes. The
parity tests send the same requests to aiohttp's port and the lean port and compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.web.harness import Service, age_birth, request_id
from tests.web.raw_http import (
    GATE,
    PATH,
    assert_closed,
    assert_silent,
    connect,
    raw_request,
    read_response,
    signed_headers,
    signed_post,
    validation_body,
)
from validator.ledger.record import LedgerRecord
from validator.state.redis import RedisStore
from validator.web.terminal.front import MAX_HEAD_BYTES, ConnectionLimits

BUS = "T-BUS-K1-001"
TODAY = dt.date(2026, 12, 2)  # the local date of the service's FixedClock
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

lean = pytest.mark.parametrize("front", ["lean"])
memory = pytest.mark.parametrize("service", ["memory"], indirect=True)
redis = pytest.mark.parametrize("service", ["redis"], indirect=True)


async def _until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# --- pipelining ----------------------------------------------------------------------


@lean
@memory
async def test_pipelined_requests_are_answered_in_order(service: Service) -> None:
    # The first is the slowest to decide (a real e-card, signature checks and a commit).
    holder = service.holder(age_birth(30))
    rids = [request_id() for _ in range(3)]
    bodies = [validation_body(service, rids[0], credential=holder.qr(service.clock.now())),
              validation_body(service, rids[1]), validation_body(service, rids[2])]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(b"".join(signed_post(service, body) for body in bodies))
        answers = [await read_response(reader) for _ in bodies]
        assert [a.status for a in answers] == [200, 200, 200]
        assert [a.json()["request_id"] for a in answers] == rids
        assert answers[0].json()["decision"] == "accept"
        assert all("connection" not in a.headers for a in answers)
        await assert_silent(reader)  # still open, nothing more


@lean
@memory
async def test_pipelined_error_in_the_middle_keeps_the_order(service: Service) -> None:
    first, last = request_id(), request_id()
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, validation_body(service, first))
                     + raw_request("GET", "/nope")
                     + signed_post(service, validation_body(service, last)))
        answers = [await read_response(reader) for _ in range(3)]
    assert [a.status for a in answers] == [200, 404, 200]
    assert answers[0].json()["request_id"] == first
    assert answers[1].json() == {"error": "not_found", "detail": "Not Found"}
    assert answers[2].json()["request_id"] == last


@lean
@memory
@pytest.mark.parametrize("connection_limits", [ConnectionLimits(max_queued=4)])
async def test_a_long_pipeline_pauses_reading_and_is_answered_in_order(
    service: Service,
) -> None:
    """More pipelined requests than `max_queued`: reading pauses while they wait, resumes
    as they drain, and every one is answered, in order."""
    pauses: list[tuple[str, bool]] = []
    service.lean_front.on_pause = lambda reason, on: pauses.append((reason, on))
    rids = [request_id() for _ in range(30)]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(b"".join(signed_post(service, validation_body(service, rid)) for rid in rids))
        answers = [await read_response(reader) for _ in rids]
        assert [a.json()["request_id"] for a in answers] == rids
        assert {a.status for a in answers} == {200}
        await assert_silent(reader)
    assert ("queue", True) in pauses and pauses[-1] == ("queue", False), pauses


# --- limits and garbage: an answer, then the connection is closed ---------------------


def _big_header() -> bytes:
    return raw_request("POST", PATH, {"X-Padding": "a" * (MAX_HEAD_BYTES + 1024)})


def _many_headers() -> bytes:
    return raw_request("POST", PATH, {f"X-Pad-{i}": "b" * 60 for i in range(400)})


def _long_url() -> bytes:
    return raw_request("GET", "/v1/validations?" + "c" * (MAX_HEAD_BYTES + 1024))


def _endless_header() -> bytes:  # the head never ends: counted as it arrives
    return b"POST /v1/validations HTTP/1.1\r\nX-Padding: " + b"d" * (MAX_HEAD_BYTES + 1024)


@lean
@memory
@pytest.mark.parametrize("request_bytes", [_big_header, _many_headers, _long_url,
                                           _endless_header])
async def test_head_over_the_limit_is_431_then_close(
    service: Service, request_bytes: Callable[[], bytes]
) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(request_bytes())
        answer = await read_response(reader)
        assert answer.status == 431
        assert answer.json()["error"] == "headers_too_large"
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)


@lean
@memory
async def test_content_length_over_the_limit_is_413_before_the_body(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", PATH, {"X-Terminal-Id": GATE, "Content-Length": "20000"},
                          length=False))  # and no body: the answer must not wait for it
        answer = await read_response(reader, within=1.0)
        assert (answer.status, answer.json()["error"]) == (413, "payload_too_large")
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)


@lean
@memory
async def test_chunked_body_over_the_limit_is_413_then_close(service: Service) -> None:
    size = 16 * 1024 + 1
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (size, b" " * size)
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", PATH, {"Transfer-Encoding": "chunked"}, length=False)
                     + chunked)
        answer = await read_response(reader)
        assert (answer.status, answer.json()["error"]) == (413, "payload_too_large")
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)


@lean
@memory
async def test_garbage_is_400_then_close(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(b"NOT HTTP\r\n\r\n")
        answer = await read_response(reader)
        assert (answer.status, answer.json()["error"]) == (400, "invalid_request")
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)


@lean
@memory
@pytest.mark.parametrize("target", ["http://h:99999/v1/validations", "http://[::1"])
async def test_a_target_that_is_no_url_is_400_and_the_connection_lives(
    service: Service, target: str
) -> None:
    """llhttp passes these request targets; the URL parser does not."""
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", target, body=b"{}") + raw_request("GET", "/nope"))
        answer = await read_response(reader)
        assert (answer.status, answer.json()) == (400, {
            "error": "invalid_request", "detail": "malformed request target"})
        assert (await read_response(reader)).status == 404


@lean
@memory
async def test_the_fronts_own_errors_are_counted_like_the_apis(service: Service) -> None:
    for request in (b"NOT HTTP\r\n\r\n", raw_request("GET", "/nope"), raw_request("GET", PATH),
                    raw_request("POST", "http://h:99999/x", body=b"{}"), _big_header(),
                    raw_request("POST", PATH, {"Content-Length": "20000"}, length=False)):
        async with connect(service.terminal_url) as (reader, writer):
            writer.write(request)
            await read_response(reader)
    async with service.session.get(service.url + "/metrics") as resp:
        text = await resp.text()
    for status, error, count in (("400", "invalid_request", 2), ("404", "not_found", 1),
                                 ("405", "method_not_allowed", 1),
                                 ("431", "headers_too_large", 1),
                                 ("413", "payload_too_large", 1)):
        line = f'validator_http_errors_total{{error="{error}",status="{status}"}} {count}.0'
        assert line in text, (line, [t for t in text.splitlines() if "http_errors" in t])


@pytest.mark.parametrize("front", ["aiohttp"])
@memory
async def test_aiohttps_own_errors_are_counted_on_the_main_port(service: Service) -> None:
    """Its router's 404 and 405 and its 413 count as the lean front's do."""
    for method, path, body in (("GET", "/nope", b""), ("GET", "/nowhere", b""),
                               ("PUT", PATH, b"{}"), ("POST", PATH, b"x" * 20_000)):
        async with service.session.request(method, service.url + path, data=body) as resp:
            assert resp.status in (404, 405, 413)
    async with service.session.get(service.url + "/metrics") as resp:
        text = await resp.text()
    for status, error, count in (("404", "not_found", 2), ("405", "method_not_allowed", 1),
                                 ("413", "payload_too_large", 1)):
        line = f'validator_http_errors_total{{error="{error}",status="{status}"}} {count}.0'
        assert line in text, (line, [t for t in text.splitlines() if "http_errors" in t])


# --- Expect: 100-continue --------------------------------------------------------------


@lean
@memory
async def test_100_continue_comes_before_the_body_is_sent(service: Service) -> None:
    rid = request_id()
    body = validation_body(service, rid)
    request = signed_post(service, body, Expect="100-continue")
    head = request[:-len(body)]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(head)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
        assert interim == CONTINUE
        writer.write(body)
        answer = await read_response(reader)
    assert (answer.status, answer.json()["request_id"]) == (200, rid)


@lean
@memory
async def test_100_continue_is_not_sent_for_a_body_too_large(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", PATH,
                                 {"Expect": "100-continue", "Content-Length": "20000"},
                                 length=False))
        answer = await read_response(reader)  # a 100 here would fail: it is not the 413
        assert (answer.status, answer.json()["error"]) == (413, "payload_too_large")
        await assert_closed(reader)


@lean
@memory
async def test_100_continue_behind_a_pipelined_request_comes_in_its_turn(
    service: Service
) -> None:
    first, second = request_id(), request_id()
    body = validation_body(service, second)
    waiting = signed_post(service, body, Expect="100-continue")[:-len(body)]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, validation_body(service, first)) + waiting)
        answer = await read_response(reader)
        assert (answer.status, answer.json()["request_id"]) == (200, first)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1.0)
        assert interim == CONTINUE
        writer.write(body)
        answer = await read_response(reader)
    assert (answer.status, answer.json()["request_id"]) == (200, second)


# --- HTTP/1.0, Connection, Date, Content-Length, HEAD ---------------------------------


@lean
@memory
@pytest.mark.parametrize(("version", "connection"), [("1.0", None), ("1.1", "close"),
                                                     ("1.0", "close")])
async def test_a_request_that_asks_for_close_is_answered_then_closed(
    service: Service, version: str, connection: str | None
) -> None:
    rid = request_id()
    body = validation_body(service, rid)
    headers: dict[str, str | bytes] = {**signed_headers(service, body)}
    if connection:
        headers["Connection"] = connection
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", PATH, headers, body, version=version))
        answer = await read_response(reader)
        assert (answer.status, answer.json()["request_id"]) == (200, rid)
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)


@lean
@memory
async def test_http10_keep_alive_is_kept(service: Service) -> None:
    rids = [request_id(), request_id()]
    async with connect(service.terminal_url) as (reader, writer):
        for rid in rids:
            body = validation_body(service, rid)
            writer.write(raw_request("POST", PATH, {**signed_headers(service, body),
                                             "Connection": "keep-alive"}, body, version="1.0"))
            answer = await read_response(reader)
            assert (answer.status, answer.json()["request_id"]) == (200, rid)
            assert answer.headers["connection"] == "keep-alive"
        await assert_silent(reader)


@lean
@memory
async def test_every_answer_has_a_date_and_its_exact_length(service: Service) -> None:
    bad_signature = validation_body(service)
    requests = [
        signed_post(service, validation_body(service)),  # 200
        raw_request("GET", "/nope"),  # 404
        raw_request("GET", PATH),  # 405
        raw_request("POST", PATH,
                    {**signed_headers(service, bad_signature), "X-Signature": "00" * 32},
                    bad_signature),  # 401
        signed_post(service, b"not json"),  # 400
        raw_request("POST", PATH, {**signed_headers(service, b"[1]"), "Connection": "close"},
                    b"[1]"),
    ]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(b"".join(requests))
        # Each body is read by its Content-Length: one byte too many or too few and the
        # next status line, the JSON or the final EOF check fails.
        answers = [await read_response(reader) for _ in requests]
        await assert_closed(reader)
    assert [a.status for a in answers] == [200, 404, 405, 401, 400, 400]
    for answer in answers:
        assert isinstance(answer.json(), dict)
        assert answer.headers["content-type"] == "application/json"
        date = email.utils.parsedate_to_datetime(answer.headers["date"])
        assert abs(date.timestamp() - time.time()) < 5
        assert answer.headers["date"].endswith(" GMT")


@lean
@memory
async def test_head_is_405_with_allow_and_no_body(service: Service) -> None:
    rid = request_id()
    async with connect(service.terminal_url) as (reader, writer):
        # A body after the HEAD answer's head would be read as the next status line.
        writer.write(raw_request("HEAD", PATH)
                     + signed_post(service, validation_body(service, rid)))
        head = await read_response(reader, head_only=True)
        assert head.status == 405
        assert head.headers["allow"] == "POST"
        assert int(head.headers["content-length"]) > 0  # what a GET would have had
        answer = await read_response(reader)
    assert (answer.status, answer.json()["request_id"]) == (200, rid)


# --- timeouts ----------------------------------------------------------------------------

QUICK_S = 0.3  # the keep-alive and read timeouts of the tests below


# Short timeouts and a fast sweep, for the front the test's `service` starts.
quick_timeouts = pytest.mark.parametrize("connection_limits", [ConnectionLimits(
    keep_alive_s=QUICK_S, read_timeout_s=QUICK_S, sweep_s=0.05)])


@lean
@memory
@quick_timeouts
async def test_idle_keep_alive_connection_is_closed(service: Service) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, validation_body(service)))
        assert (await read_response(reader)).status == 200
        answered = time.monotonic()
        await assert_closed(reader, within=2.0)
        assert time.monotonic() - answered >= QUICK_S  # idle for the timeout, not less
    await _until(lambda: not service.lean_front.connections)


@lean
@memory
@pytest.mark.parametrize("partial", [
    b"POST /v1/validations HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # half a head
    b"POST /v1/validations HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{\"request_id\"",
])
@quick_timeouts
async def test_request_not_whole_in_time_is_closed(service: Service, partial: bytes) -> None:
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(partial)
        started = time.monotonic()
        await assert_closed(reader, within=2.0)
        assert time.monotonic() - started >= QUICK_S * 0.9


# --- graceful close --------------------------------------------------------------------


@lean
@redis
async def test_close_finishes_the_request_in_flight(
    service: Service, redis_server: RedisServer
) -> None:
    front = service.lean_front
    holder = service.holder(age_birth(72))
    # The front has served before: a connection came and went.
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, validation_body(service), Connection="close"))
        assert (await read_response(reader)).status == 200
        await assert_closed(reader)
    await _until(lambda: not front.connections)
    rid = request_id()
    body = validation_body(service, rid,
                 credential=holder.card.tap(BUS, int(service.clock.now()), "0A1B2C3D"))
    async with connect(service.terminal_url) as (idle, idle_writer), \
            connect(service.terminal_url) as (reader, writer):
        idle_writer.write(signed_post(service, validation_body(service)))
        assert (await read_response(idle)).status == 200
        with redis_server.paused():
            writer.write(raw_request("POST", PATH, {**signed_headers(service, body, BUS)}, body))
            await _until(lambda: any(not c._idle() for c in front.connections))
            closing = asyncio.create_task(front.close(grace_s=5))
            await assert_closed(idle, within=1.0)  # the idle one goes at once
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", front.port)
            assert not closing.done()
        # Redis answered well within the store's 1 s timeout: a decision, not a 503.
        answer = await read_response(reader)
        assert (answer.status, answer.json()["request_id"]) == (200, rid)
        assert (answer.json()["decision"], answer.json()["reason"]) == ("accept", "ok")
        assert answer.headers["connection"] == "close"
        await assert_closed(reader)
    await asyncio.wait_for(closing, 2.0)
    assert not front.connections


@lean
@memory
async def test_close_closes_idle_connections_at_once(service: Service) -> None:
    front = service.lean_front
    async with connect(service.terminal_url) as (used, writer), \
            connect(service.terminal_url) as (silent, _):
        writer.write(signed_post(service, validation_body(service)))
        assert (await read_response(used)).status == 200
        await _until(lambda: len(front.connections) == 2)
        started = time.monotonic()
        await asyncio.wait_for(front.close(grace_s=5), 2.0)
        assert time.monotonic() - started < 1.0  # not the grace period
        await assert_closed(used)
        await assert_closed(silent)


# --- a peer that goes away -----------------------------------------------------------


@lean
@pytest.mark.parametrize("service", ["memory", "redis"], indirect=True)
async def test_peer_gone_mid_validation_still_gets_counted_once(
    service: Service, redis_server: RedisServer
) -> None:
    front = service.lean_front
    holder = service.holder(age_birth(72))
    rid = request_id()
    body = validation_body(service, rid, credential=holder.qr(service.clock.now()))
    # With Redis the validation is held until the peer is surely gone (connection_lost).
    frozen = redis_server.paused() if isinstance(service.store, RedisStore) else \
        contextlib.nullcontext()
    with frozen:
        async with connect(service.terminal_url) as (_, writer):
            writer.write(signed_post(service, body))
            await _until(lambda: bool(front.connections))
            sock = writer.get_extra_info("socket")  # closed unread, with a reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await _until(lambda: not front.connections)
    await _until_ledger(service, 1)
    (_, raw), = await service.store.ledger_read(TODAY)
    record = LedgerRecord.from_json(raw)
    assert (record.request_id, record.decision) == (rid, "accept")

    service.clock.advance(5)  # the terminal's retry, re-signed
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, body))
        answer = await read_response(reader)
    assert (answer.status, answer.json()["request_id"]) == (200, rid)
    assert answer.json()["txn_id"] == record.txn_id  # the recorded answer
    assert len(await service.store.ledger_read(TODAY)) == 1


async def _until_ledger(service: Service, count: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while len(await service.store.ledger_read(TODAY)) < count:
        assert time.monotonic() < deadline, "the decision never reached the ledger"
        await asyncio.sleep(0.01)


# --- header bytes that are not text -----------------------------------------------------

BAD_SIGNATURE = "unknown terminal or bad signature"


@memory
@pytest.mark.parametrize(("name", "value", "detail"), [
    ("X-Terminal-Id", b"\xff\xfe", BAD_SIGNATURE),
    ("X-Terminal-Id", "T-GATE-S03-\u00e9".encode(), BAD_SIGNATURE),
    ("X-Timestamp", "\u00b2".encode(), "X-Timestamp missing or more than 300 s off"),
    ("X-Signature", b"\xff" * 64, BAD_SIGNATURE),
])
async def test_undecodable_header_bytes_are_401_and_the_connection_lives(
    service: Service, name: str, value: bytes, detail: str
) -> None:
    bad, good = validation_body(service), validation_body(service)
    rid = json.loads(good)["request_id"]
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(raw_request("POST", PATH, {**signed_headers(service, bad), name: value}, bad))
        answer = await read_response(reader)
        assert answer.status == 401
        assert answer.json() == {"error": "unauthorized", "detail": detail}
        writer.write(signed_post(service, good))
        answer = await read_response(reader)
        assert (answer.status, answer.json()["request_id"]) == (200, rid)


# --- parity: aiohttp's port and the lean port give the same answers --------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


def _cases(service: Service) -> dict[str, Case]:
    ok = validation_body(service)
    no_rid = json.dumps({"scanned_at": service.scanned_at(),
                         "credential": {"type": "essc_qr", "qr": "ESSC1:AAAA"}}).encode()
    big = b"{" + b" " * (16 * 1024) + b"}"
    return {
        "unknown terminal": Case("POST", PATH, ok,
                                 {**signed_headers(service, ok), "X-Terminal-Id": "T-NOBODY-01"}),
        "bad signature": Case("POST", PATH, ok,
                              {**signed_headers(service, ok), "X-Signature": "00" * 32}),
        "no signature": Case("POST", PATH, ok, {"X-Terminal-Id": GATE}),
        "disabled terminal": Case("POST", PATH, ok, signed_headers(service, ok, "T-GATE-S01-99")),
        "missing request_id": Case("POST", PATH, no_rid, signed_headers(service, no_rid)),
        "not json": Case("POST", PATH, b"not json", signed_headers(service, b"not json")),
        "GET on the path": Case("GET", PATH, b"", {}),
        "PUT on the path": Case("PUT", PATH, ok, signed_headers(service, ok)),
        "unknown path": Case("GET", "/nope", b"", {}),
        "POST elsewhere": Case("POST", "/v1/validation", ok, signed_headers(service, ok)),
        "oversize body": Case("POST", PATH, big, {"X-Terminal-Id": "nobody"}),
    }


async def _ask(service: Service, base: str, case: Case) -> tuple[int, bytes, str, str | None]:
    async with service.session.request(case.method, base + case.path, data=case.body,
                                       headers=case.headers) as resp:
        return (resp.status, await resp.read(), resp.headers["Content-Type"],
                resp.headers.get("Allow"))


@lean
@memory
@pytest.mark.parametrize("case", ["unknown terminal", "bad signature", "no signature",
                                  "disabled terminal", "missing request_id", "not json",
                                  "GET on the path", "PUT on the path", "unknown path",
                                  "POST elsewhere", "oversize body"])
async def test_both_ports_answer_an_error_alike(service: Service, case: str) -> None:
    request = _cases(service)[case]
    via_aiohttp = await _ask(service, service.url, request)
    via_lean = await _ask(service, service.terminal_url, request)
    assert service.url != service.terminal_url
    assert via_lean == via_aiohttp
    status, body, content_type, allow = via_lean
    assert status >= 400 and content_type == "application/json"
    assert set(json.loads(body)) <= {"error", "detail"}
    assert (allow == "POST") == (status == 405)


@lean
@memory
@pytest.mark.parametrize("first", ["aiohttp", "lean"])
async def test_a_decision_replays_byte_for_byte_on_the_other_port(
    service: Service, first: str
) -> None:
    holder = service.holder(age_birth(30))
    body = validation_body(service, credential=holder.qr(service.clock.now()))
    urls = [service.url, service.terminal_url]
    if first == "lean":
        urls.reverse()
    replies = []
    for base in urls:
        async with service.session.post(base + PATH, data=body,
                                        headers=signed_headers(service, body)) as resp:
            replies.append((resp.status, await resp.read(), resp.headers["Content-Type"]))
        service.clock.advance(5)  # the retry is signed afresh
    assert replies[0] == replies[1]
    status, raw, _ = replies[0]
    assert (status, json.loads(raw)["decision"]) == (200, "accept")
    assert len(await service.store.ledger_read(TODAY)) == 1


# --- mutated requests on the wire ------------------------------------------------------


def _mutations(valid: bytes, count: int, seed: int) -> list[bytes]:
    """`count` damaged copies of a valid request: bytes flipped, cut, doubled, CR/LF
    and header separators inserted, pieces repeated, the request target replaced by an
    odd one (a seeded, repeatable mix)."""
    rng = random.Random(seed)
    targets = [b"http://h:99999/v1/validations", b"http://[::1", b"*", b"//", b"/%ff",
               b"/v1/validation%73", b"/v1/validations?%zz", b"http://h/v1/validations",
               b"/v1/validations#x", b"/v1//validations", b"/v1/validations/"]
    specials = [b"\r\n", b"\r", b"\n", b":", b" ", b"\x00", b"\xff", b"\r\n\r\n",
                b"Content-Length: 99999\r\n", b"Transfer-Encoding: chunked\r\n", b"%"]
    out = []
    for _ in range(count):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            kind = rng.randrange(6)
            if kind == 5:
                data = data.replace(PATH.encode(), rng.choice(targets), 1)
            elif kind == 0:
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at:at + rng.randint(1, 40)]
            elif kind == 2:
                data[at:at] = rng.choice(specials)
            elif kind == 3:
                data[at:at] = data[at:at + rng.randint(1, 60)]
            else:
                data = data[:at]
        out.append(bytes(data))
    return out


def _server_side(service: Service, writer: asyncio.StreamWriter) -> Any:
    """The front's connection object for this client socket (None once it is gone)."""
    me = writer.get_extra_info("sockname")
    for conn in service.lean_front.connections:
        transport = conn._transport
        if transport is not None and transport.get_extra_info("peername") == me:
            return conn
    return None


@lean
@memory
async def test_mutated_requests_on_the_wire_never_yield_a_500_or_a_hang(
    service: Service,
) -> None:
    """Whatever bytes arrive, followed by a good request (the canary) on the same
    connection: the front answers 2xx/4xx only, and it never sits on a request it has
    whole without answering it — each exchange ends with the canary's answer, a close,
    or everything whole answered while the front waits for the rest of a request (which
    its read timeout would end). Then the front still serves."""
    seen: list[int] = []
    for data in _mutations(signed_post(service, validation_body(service)), 300, seed=5):
        canary = request_id()
        async with connect(service.terminal_url) as (reader, writer):
            writer.write(data + signed_post(service, validation_body(service, canary)))
            stream = b""
            deadline = time.monotonic() + 3.0
            while canary.encode() not in stream:
                assert time.monotonic() < deadline, ("no answer, no close", data)
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 0.005)
                except TimeoutError:
                    conn = _server_side(service, writer)
                    if conn is None or not (conn._busy or conn._queue):
                        break  # all it had whole is answered; it may wait for more bytes
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break  # closed by the front (after a 400/413/431, or a bad stream)
                stream += chunk
            conn = _server_side(service, writer)
            assert conn is None or conn._busy or not conn._queue, ("stuck", data)
            statuses = [int(line.split(b" ")[1]) for line in stream.split(b"\r\n")
                        if line.startswith(b"HTTP/1.1 ")]
            assert all(s < 500 for s in statuses), (data, stream[:300])
            seen += statuses
    assert {200, 400, 401, 404} <= set(seen), sorted(set(seen))  # the mix reached each
    async with connect(service.terminal_url) as (reader, writer):
        writer.write(signed_post(service, validation_body(service)))
        assert (await read_response(reader)).status == 200
