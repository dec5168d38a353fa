"""What either HTTP front accepts of a request head, written down once.

aiohttp's port (validator/web/main_port.py) and the lean terminal front
(validator/web/terminal/front.py) are both given an `HttpLimits` and answer a request over any
of them the same way: 431 `headers_too_large`, and the connection closed. A request
line of an HTTP version other than 1.0 and 1.1, an HTTP/1.1 request without `Host` and
any request with two are 400 `invalid_request` (RFC 9112 §2.3, §3.2; a 400 rather
than a 505, as no input gets a 5xx). tests/web/test_http_limits.py holds the table
both fronts are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "SUPPORTED_VERSIONS", "HttpLimits", "host_problem"]

SUPPORTED_VERSIONS = frozenset({(1, 0), (1, 1)})


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds on a request head; a terminal's head is ~300 bytes, an operator's ~1 KiB."""

    max_head_bytes: int = 16 * 1024  # request line and every header line together
    max_line_bytes: int = 8190  # the request line, and each header line (aiohttp's default)
    max_headers: int = 100  # header lines


DEFAULT_LIMITS = HttpLimits()


def host_problem(hosts: int, version: tuple[int, int]) -> str | None:
    """Why a request with `hosts` Host header lines is refused (400), or None."""
    if hosts > 1:
        return "more than one Host header"
    if hosts == 0 and version >= (1, 1):
        return "an HTTP/1.1 request needs a Host header"
    return None
