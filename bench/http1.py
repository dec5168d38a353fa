"""Just enough HTTP/1.1 for the lean load generator: request bytes, and a response parser.

Requests are written whole, once, before the clock starts (`request_bytes`). Responses
are parsed incrementally (`ResponseParser.feed`, whatever the socket delivered: part of
a response, or several): the status line, `Content-Length`, and the body. A response
the generator cannot frame — chunked, no length, a malformed head — is `BadResponse`,
and the connection is given up: the validator always sends a `Content-Length`.
"""

from __future__ import annotations

from typing import NamedTuple

from bench.creds import PATH, SignedRequest

__all__ = ["BadResponse", "Response", "ResponseParser", "request_bytes"]

MAX_HEAD = 16 * 1024  # a head without its end past this many bytes is not HTTP


class BadResponse(Exception):
    """The bytes from the server are not an HTTP/1.1 response the generator can frame."""


class Response(NamedTuple):
    status: int
    body: bytes
    close: bool  # the server said `Connection: close`: no more responses on this socket


def request_bytes(host: str, request: SignedRequest) -> bytes:
    """A complete POST of `request`, keep-alive (HTTP/1.1's default)."""
    head = (f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(request.body)}\r\nX-Terminal-Id: {request.terminal}\r\n"
            f"X-Timestamp: {request.timestamp}\r\nX-Signature: {request.signature}\r\n\r\n")
    return head.encode("ascii") + request.body


def _head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, close) from a response head without its final CRLFCRLF."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit() or \
            rest[3:4] not in (b"", b" "):
        raise BadResponse(f"bad status line {lines[0][:80]!r}")
    status, length, close = int(code), -1, version == b"HTTP/1.0"
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise BadResponse(f"bad header line {line[:80]!r}")
        name = name.strip().lower()
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                raise BadResponse(f"bad Content-Length {value[:20]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            raise BadResponse("Transfer-Encoding is not supported")
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if length < 0:
        if status in (204, 304) or 100 <= status < 200:
            return status, 0, close
        raise BadResponse("no Content-Length")
    return status, length, close


class ResponseParser:
    """Splits a byte stream into responses; keeps what is not complete yet."""

    def __init__(self) -> None:
        self._buffer = b""
        self._head: tuple[int, int, bool] | None = None  # parsed head awaiting its body
        self._body_at = 0

    @property
    def pending(self) -> bool:
        """Part of a response has arrived, and not the rest."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Response]:
        """The responses completed by `data` (none, one or several), in order."""
        buffer = self._buffer + data if self._buffer else data
        done: list[Response] = []
        while buffer:
            if self._head is None:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise BadResponse("response head too long")
                    break
                self._head, self._body_at = _head(buffer[:end]), end + 4
            status, length, close = self._head
            end = self._body_at + length
            if len(buffer) < end:
                break
            done.append(Response(status, buffer[self._body_at:end], close))
            buffer, self._head = buffer[end:], None
        self._buffer = buffer
        return done
