"""Terminal request signatures (protocol §4): HMAC-SHA256 with each terminal's secret."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as keyed_hmac

from validator.keyset import KeySet
from validator.lru import Lru
from validator.policy.model import Terminal
from validator.web.exceptions import ApiError

__all__ = ["KEYED_CACHE_SIZE", "TIMESTAMP_WINDOW_S", "TerminalAuth", "terminal_string_to_sign"]

TIMESTAMP_WINDOW_S = 300
KEYED_CACHE_SIZE = 8192  # terminals whose keyed context is kept: a city's whole fleet


def terminal_string_to_sign(method: str, path: str, timestamp: str, body_sha256: str) -> bytes:
    """METHOD, PATH, X-Timestamp and hex(SHA-256(body)), joined by newlines (§4)."""
    return f"{method}\n{path}\n{timestamp}\n{body_sha256}".encode()


class TerminalAuth:
    """Checks a request's signature against the terminal registry and the key set.

    It keeps HMAC-SHA256 contexts already keyed with a terminal's secret, at most
    `cache_size`. A copy of one costs about a third of `hmac.digest`, which looks the
    algorithm up and keys it on every call, and the locked `cryptography` release's
    contexts are not tracked by the garbage collector (the standard library's
    `hmac.HMAC` is), so the cache stays out of its walks (validator/lru.py; `make bench`
    shows it).
    """

    def __init__(self, terminals: dict[str, Terminal], keys: KeySet, *,
                 cache_size: int = KEYED_CACHE_SIZE) -> None:
        self._terminals = terminals
        self._secrets = keys.terminal_secrets
        self.keyed: Lru[bytes, keyed_hmac.HMAC] = Lru(cache_size)

    def authenticate(self, terminal_id: str, timestamp: str, signature: str, method: str,
                     path: str, body_sha256: str, *, now: float) -> Terminal:
        """The registry's terminal for a correctly signed request; else 401, or 403 if
        disabled.

        The first three are the request's X-Terminal-Id, X-Timestamp and X-Signature ("" when
        absent), `path` its raw path without the query string. Every 401 looks the same from
        outside, so a caller cannot probe which ids exist.
        """
        terminal = self._terminals.get(terminal_id)
        secret = self._secrets.get(terminal_id)
        if terminal is None or secret is None:
            raise ApiError(401, "unauthorized", "unknown terminal or bad signature")
        # isascii() first: str.isdigit() is also true of "²", which int() refuses.
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or \
                abs(now - int(timestamp)) > TIMESTAMP_WINDOW_S:
            raise ApiError(401, "unauthorized", "X-Timestamp missing or more than 300 s off")
        message = terminal_string_to_sign(method, path, timestamp, body_sha256)
        mac = self._keyed_sha256(secret).copy()
        mac.update(message)
        expected = mac.finalize().hex()
        if not hmac.compare_digest(expected,
                                   signature.lower().encode("ascii", "replace").decode()):
            raise ApiError(401, "unauthorized", "unknown terminal or bad signature")
        if not terminal.enabled:
            raise ApiError(403, "terminal_disabled", f"terminal {terminal_id} is disabled")
        return terminal

    def _keyed_sha256(self, secret: bytes) -> keyed_hmac.HMAC:
        keyed = self.keyed.get(secret)
        if keyed is None:
            keyed = keyed_hmac.HMAC(secret, hashes.SHA256())
            self.keyed.put(secret, keyed)
        return keyed
