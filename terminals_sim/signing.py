"""Terminal request signing (protocol §4), written from the protocol page alone.

The simulator plays the other side of the wire, so it shares no code with the
validator: if the two ever disagree, the tests that drive one with the other fail.
"""

from __future__ import annotations

import hashlib
import hmac


def sign_headers(
    terminal_id: str, secret: bytes, method: str, path: str, body: bytes, timestamp: int
) -> dict[str, str]:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{method}\n{path}\n{timestamp}\n{digest}".encode()
    return {
        "X-Terminal-Id": terminal_id,
        "X-Timestamp": str(timestamp),
        "X-Signature": hmac.new(secret, message, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }
