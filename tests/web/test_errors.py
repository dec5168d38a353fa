"""Every class of bad input gets a precise 4xx (or a deny reason), never a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from terminals_sim.signing import sign_headers
from tests.conftest import RedisServer
from tests.web.harness import Service, age_birth

GATE = "T-GATE-S03-01"
PATH = "/v1/validations"


async def _post(service: Service, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    url = service.terminal_url + PATH
    async with service.session.post(url, data=body, headers=headers) as resp:
        return resp.status, json.loads(await resp.read() or b"{}")


def _signed(service: Service, body: bytes, terminal: str = GATE, *, ts_offset: int = 0,
            path: str = PATH) -> dict[str, str]:
    return sign_headers(terminal, service.secrets.get(terminal, b"\1" * 32), "POST", path,
                        body, int(service.clock.now()) + ts_offset)


def _body(service: Service, **override: object) -> bytes:
    doc: dict[str, object] = {"request_id": "req-00000001", "scanned_at": service.scanned_at(),
                              "credential": {"type": "essc_qr", "qr": "ESSC1:AAAA"}}
    doc.update(override)
    return json.dumps(doc).encode()


async def test_unknown_terminal_is_401(service: Service) -> None:
    body = _body(service)
    headers = _signed(service, body)
    headers["X-Terminal-Id"] = "T-NOBODY-01"
    assert await _post(service, body, headers) == (401, {
        "error": "unauthorized", "detail": "unknown terminal or bad signature"})


@pytest.mark.parametrize("mutate", [
    lambda h: h.update({"X-Signature": "00" * 32}),
    lambda h: h.update({"X-Signature": "not hex at all ☃"}),
    lambda h: h.pop("X-Signature"),
    lambda h: h.pop("X-Timestamp"),
    lambda h: h.update({"X-Timestamp": "-5"}),
    lambda h: h.update({"X-Timestamp": "\u00b2"}),  # isdigit(), yet int() refuses it
    lambda h: h.update({"X-Timestamp": "\u0661\u0667\u0669\u0665"}),  # Arabic-Indic digits
])
async def test_bad_signature_headers_are_401(
    service: Service, mutate: Callable[[dict[str, str]], object]
) -> None:
    body = _body(service)
    headers = _signed(service, body)
    mutate(headers)
    status, doc = await _post(service, body, headers)
    assert (status, doc["error"]) == (401, "unauthorized")


async def test_signature_over_another_body_or_path_is_401(service: Service) -> None:
    body = _body(service)
    status, _ = await _post(service, body, _signed(service, body + b" "))
    assert status == 401
    status, _ = await _post(service, body, _signed(service, body, path="/v1/other"))
    assert status == 401


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stale_timestamp_is_401(service: Service, offset: int) -> None:
    body = _body(service)
    status, doc = await _post(service, body, _signed(service, body, ts_offset=offset))
    assert (status, doc["error"]) == (401, "unauthorized")


async def test_disabled_terminal_is_403(service: Service) -> None:
    body = _body(service)
    status, doc = await _post(service, body, _signed(service, body, "T-GATE-S01-99"))
    assert (status, doc["error"]) == (403, "terminal_disabled")


async def test_body_over_16_kib_is_413_before_anything_else(service: Service) -> None:
    body = b"{" + b" " * (16 * 1024) + b"}"
    status, doc = await _post(service, body, {"X-Terminal-Id": "nobody"})
    assert (status, doc["error"]) == (413, "payload_too_large")


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
        await asyncio.sleep(0.005)  # separate segments: the server reads them as they come


async def test_body_in_pieces_without_a_length_is_read_whole(service: Service) -> None:
    # Chunked transfer encoding, sent slowly: the server must wait for the end of the body,
    # not decide on what arrived with the head.
    body = _body(service, credential={"type": "essc_qr", "qr": "HC1:6BFOXN"})
    async with service.session.post(service.terminal_url + PATH, data=_pieces(body, 16),
                                    headers=_signed(service, body)) as resp:
        assert resp.status == 200
        assert (await resp.json())["reason"] == "unsupported_credential"


async def test_chunked_body_over_16_kib_is_413(service: Service) -> None:
    body = b"{" + b" " * (16 * 1024) + b"}"
    async with service.session.post(service.terminal_url + PATH, data=_pieces(body, 4096),
                                    headers={"X-Terminal-Id": "nobody"}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (413, "payload_too_large")


@pytest.mark.parametrize(("body", "detail"), [
    (b"not json", "body is not JSON"),
    (b"[1, 2]", "body: expected a JSON object"),
    (b'{"scanned_at": "2026-12-02T10:00:00+08:00", "credential": {}}', "request_id"),
])
async def test_unparseable_bodies_are_400(service: Service, body: bytes, detail: str) -> None:
    status, doc = await _post(service, body, _signed(service, body))
    assert (status, doc["error"]) == (400, "invalid_request")
    assert detail in doc["detail"]


@pytest.mark.parametrize(("override", "field"), [
    ({"request_id": "short"}, "request_id"),
    ({"request_id": "has spaces in it"}, "request_id"),
    ({"request_id": "x" * 65}, "request_id"),
    ({"scanned_at": "2026-12-02T10:00:00"}, "scanned_at"),
    ({"scanned_at": "yesterday"}, "scanned_at"),
    ({"scanned_at": 1795000000}, "scanned_at"),
    ({"companion": "yes"}, "companion"),
    ({"credential": "ESSC1:..."}, "credential"),
    ({"credential": {"type": "nfc"}}, "credential.type"),
    ({"credential": {"type": "essc_qr"}}, "credential.qr"),
    ({"credential": {"type": "essc_qr", "qr": "ESSC1:" + "A" * 2043}}, "credential.qr"),
    ({"credential": {"type": "ssc_card", "region": "369900"}}, "credential.ssn"),
])
async def test_schema_errors_are_400_naming_the_field(
    service: Service, override: dict[str, object], field: str
) -> None:
    body = _body(service, **override)
    status, doc = await _post(service, body, _signed(service, body))
    assert (status, doc["error"]) == (400, "invalid_request")
    assert doc["detail"].startswith(field)


@pytest.mark.parametrize(("field", "value"), [("kv", True), ("atc", "5"), ("ssn", 1)])
async def test_card_fields_of_the_wrong_json_type_are_400(
    service: Service, field: str, value: object
) -> None:
    holder = service.holder(age_birth(30))
    credential = holder.card.tap(GATE, int(service.clock.now()), "0A1B2C3D")
    credential[field] = value  # type: ignore[literal-required]
    body = _body(service, credential=credential)
    status, doc = await _post(service, body, _signed(service, body))
    assert (status, doc["error"], doc["detail"]) == (
        400, "invalid_request", f"credential.{field}: " + (
            "an integer is required" if field in ("kv", "atc") else "a string is required"))


async def test_qr_of_exactly_2048_chars_is_a_decision(service: Service) -> None:
    body = _body(service, credential={"type": "essc_qr", "qr": "ESSC1:" + "A" * 2042})
    status, doc = await _post(service, body, _signed(service, body))
    assert (status, doc["reason"]) == (200, "malformed_credential")


async def test_unsupported_prefix_is_a_decision(service: Service) -> None:
    body = _body(service, credential={"type": "essc_qr", "qr": "HC1:6BFOXN"})
    status, doc = await _post(service, body, _signed(service, body))
    assert (status, doc["decision"], doc["reason"]) == (200, "deny", "unsupported_credential")


async def test_unknown_path_and_method_are_json_errors(service: Service) -> None:
    async with service.session.get(service.terminal_url + "/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
    async with service.session.get(service.terminal_url + PATH) as resp:
        assert resp.status == 405


@pytest.mark.parametrize("service", ["redis"], indirect=True)
async def test_redis_down_is_503_then_recovers(
    service: Service, redis_server: RedisServer
) -> None:
    holder = service.holder(age_birth(72))
    redis_server.stop()
    try:
        reply = await service.tap("T-BUS-K1-001", holder)
        assert reply.status == 503
        assert reply.body["error"] == "store_unavailable"
        async with service.session.get(service.url + "/readyz") as resp:
            assert resp.status == 503
        async with service.session.get(service.url + "/healthz") as resp:
            assert resp.status == 200
    finally:
        redis_server.start()
    reply = await service.tap("T-BUS-K1-001", holder)
    assert (reply.status, reply.body["reason"]) == (200, "ok")
    async with service.session.get(service.url + "/readyz") as resp:
        assert resp.status == 200


@pytest.mark.parametrize("service", ["redis"], indirect=True)
async def test_hung_redis_is_503_not_a_hang(service: Service, redis_server: RedisServer) -> None:
    holder = service.holder(age_birth(72))
    with redis_server.paused():
        reply = await asyncio.wait_for(service.tap("T-BUS-K1-001", holder), timeout=10)
        assert reply.status == 503


@pytest.mark.parametrize("service", ["memory"], indirect=True)
async def test_mutated_bodies_never_yield_a_500(service: Service) -> None:
    """Seeded random byte mutations of good card and QR bodies, correctly signed:
    every answer is a decision (200), a schema error (400) or a 409, never a 5xx."""
    import random

    rng = random.Random(20261127)
    holder = service.holder(age_birth(66))
    client = service.terminal(GATE)
    seeds = [client.body(holder.qr(service.clock.now()), service.scanned_at()),
             client.body(dict(holder.card.tap(GATE, int(service.clock.now()), "0A1B2C3D")),
                         service.scanned_at())]
    statuses: dict[int, int] = {}
    for _ in range(300):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(body))
            if op < 0.4:
                body[pos] = rng.randrange(256)
            elif op < 0.7:
                del body[pos:pos + rng.randint(1, 8)]
            else:
                body[pos:pos] = rng.choice([b'"', b"{", b"]", b"0", b"-1", b"null", b"\xff"])
        status, _ = await _post(service, bytes(body), _signed(service, bytes(body)))
        statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) <= {200, 400, 409}, statuses
    assert statuses.get(400, 0) > 0 and statuses.get(200, 0) > 0
