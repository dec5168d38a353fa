"""Request-level faults (protocol §4): bodies that are not the schema, oversize bodies,
clock skew, and terminals that cannot authenticate.

Order of checks in §4: body size (413) → terminal signature (401) → disabled (403) →
schema (400) → idempotency → clock_skew → credential → policy. Each case below fails
exactly one of these, so its answer is fixed.
"""

from __future__ import annotations

import json
import os
from typing import Any

from terminals_sim.cast import Cast
from terminals_sim.checks import Scenario, Stage, credential_of, pick_bus_pair
from terminals_sim.expect import Expected
from terminals_sim.terminal import TerminalClient
from terminals_sim.terminals import SimTerminal, rfc3339

__all__ = ["WIRE_FAULTS"]

BAD_REQUEST = Expected.http(400, "invalid_request")


def _doc(terminal: SimTerminal, credential: dict[str, Any], at: float) -> dict[str, Any]:
    return {"request_id": TerminalClient.new_request_id(),
            "scanned_at": rfc3339(at, terminal.tz), "credential": credential}


def _bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


async def malformed_requests(st: Stage, cast: Cast) -> None:
    """Bodies outside the schema are 400s; a body over 16 KiB is a 413; a scan dated
    ten minutes off is a `clock_skew` decision."""
    bus, _ = pick_bus_pair(st)
    h, now = cast.adult, st.now()

    def good() -> dict[str, Any]:
        return _doc(bus, credential_of(bus, h, now, "ecard"), now)

    def without(key: str) -> dict[str, Any]:
        doc = good()
        del doc[key]
        return doc

    cases: list[tuple[str, bytes, Expected]] = [
        ("not-json", b"{request_id: 1", BAD_REQUEST),
        ("json-array", b"[]", BAD_REQUEST),
        ("no-credential", _bytes(without("credential")), BAD_REQUEST),
        ("no-request-id", _bytes(without("request_id")), BAD_REQUEST),
        ("short-request-id", _bytes({**good(), "request_id": "abc"}), BAD_REQUEST),
        ("request-id-charset", _bytes({**good(), "request_id": "bad id with spaces"}),
         BAD_REQUEST),
        ("unknown-type", _bytes({**good(), "credential": {"type": "nfc_token", "x": 1}}),
         BAD_REQUEST),
        ("scanned-at-no-offset", _bytes({**good(), "scanned_at": "2026-11-27T08:15:02"}),
         BAD_REQUEST),
        ("companion-not-bool", _bytes({**good(), "companion": "yes"}), BAD_REQUEST),
        ("qr-not-string", _bytes({**good(), "credential": {"type": "essc_qr", "qr": 42}}),
         BAD_REQUEST),
        ("qr-over-2048", _bytes({**good(), "credential": {"type": "essc_qr",
                                                          "qr": "ESSC1:" + "A" * 2043}}),
         BAD_REQUEST),
        ("card-missing-field", _bytes({**good(), "credential": {
            k: v for k, v in credential_of(bus, cast.adult_card, now).items()
            if k != "cryptogram"}}), BAD_REQUEST),
        ("body-over-16k", _bytes({**good(), "padding": "x" * 17_000}),
         Expected.http(413, "payload_too_large")),
        ("clock-skew", _bytes({**good(), "scanned_at": rfc3339(now - 600, bus.tz)}),
         Expected.deny("clock_skew")),
    ]
    for step, body, expected in cases:
        await st.send_raw(bus.client, body, step=step, expect=expected)


async def terminal_auth(st: Stage, cast: Cast) -> None:
    """Wrong secret, unknown terminal and stale timestamps are 401; a disabled
    terminal with a good signature is 403."""
    bus, _ = pick_bus_pair(st)
    now = st.now()
    body = _bytes(_doc(bus, credential_of(bus, cast.adult, now, "ecard"), now))
    unauthorized = Expected.http(401, "unauthorized")

    def client(terminal_id: str, secret: bytes) -> TerminalClient:
        return TerminalClient(st.session, st.terminal_url, terminal_id, secret, retries=0)

    await st.send_raw(client(bus.id, os.urandom(32)), body, step="wrong-secret",
                      expect=unauthorized)
    await st.send_raw(client("T-NOT-IN-REGISTRY", os.urandom(32)), body,
                      step="unknown-terminal", expect=unauthorized)
    await st.send_raw(bus.client, body, step="stale-timestamp", expect=unauthorized,
                      now=int(now) - 400)
    await st.send_raw(bus.client, body, step="future-timestamp", expect=unauthorized,
                      now=int(now) + 400)
    if not st.fleet.disabled:
        st.report.notes.append("terminal_auth: no disabled terminal with a secret: 403 unchecked")
        return
    disabled = st.fleet.disabled[0]
    await st.send_raw(disabled.client, body, step="disabled-terminal",
                      expect=Expected.http(403, "terminal_disabled"))


WIRE_FAULTS: tuple[Scenario, ...] = (
    Scenario("malformed_requests", malformed_requests),
    Scenario("terminal_auth", terminal_auth),
)
