"""NDJSON lines out of a byte stream of any size, in bounded memory.

The operator API (`holders:import`, the request body as it arrives) and the command
line (`holders load`, a file) both split their bytes here, so a line is accepted or
refused the same way whichever way it came.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["MAX_LINE_BYTES", "TOO_LONG", "lines"]

MAX_LINE_BYTES = 64 * 1024  # a line longer than this is rejected, not buffered
TOO_LONG = f"line longer than {MAX_LINE_BYTES} bytes"
_PLACEHOLDER = b"\0"  # stands in for an over-long line: no parser takes it


async def lines(chunks: AsyncIterable[bytes], too_long: set[int]) -> AsyncIterator[bytes]:
    """The lines of `chunks` without their `\\n`; chunks may split a line anywhere.

    A line over MAX_LINE_BYTES is not buffered: it is skipped to its end, its 1-based
    number added to `too_long` and a placeholder yielded, so the numbering stays right.
    """
    buffer = bytearray()
    number, overflow = 0, False
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            number += 1
            if not overflow:
                buffer += chunk[start:end]
            overflow = overflow or len(buffer) > MAX_LINE_BYTES
            if overflow:
                too_long.add(number)
            yield _PLACEHOLDER if overflow else bytes(buffer)
            buffer.clear()
            overflow, start = False, end + 1
        if not overflow:
            buffer += chunk[start:]
            if len(buffer) > MAX_LINE_BYTES:
                overflow = True
                buffer.clear()
    if buffer or overflow:  # a last line without its newline
        number += 1
        if overflow:
            too_long.add(number)
        yield _PLACEHOLDER if overflow else bytes(buffer)
