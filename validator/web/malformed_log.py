"""The one log line for malformed traffic, shared by both HTTP fronts.

A request that cannot be parsed, or breaks a limit of `HttpLimits`, is logged as one
WARNING naming the peer's address and the kind of error (an exception class or a short
fixed phrase) — never the request's bytes or a header's value, which may carry a bearer
token or an SSN. At most `per_interval` lines per `interval_s` are written; the next
line written says how many were left out, so a flood of garbage cannot flood the log.
"""

from __future__ import annotations

import logging
import time

__all__ = ["MalformedTrafficLog"]


class MalformedTrafficLog:
    """Rate-limited: `per_interval` lines per `interval_s` seconds, per process."""

    def __init__(self, logger: logging.Logger, *, per_interval: int = 1,
                 interval_s: float = 1.0) -> None:
        self._logger = logger
        self._per_interval = per_interval
        self._interval_s = interval_s
        self._window_start = -interval_s
        self._written = 0
        self._suppressed = 0

    def warn(self, peer: object, kind: str) -> None:
        """Log one malformed request from `peer` (host, port) of `kind`, unless over the rate."""
        now = time.monotonic()
        if now - self._window_start >= self._interval_s:
            self._window_start, self._written = now, 0
        if self._written >= self._per_interval:
            self._suppressed += 1
            return
        self._written += 1
        suppressed, self._suppressed = self._suppressed, 0
        host = peer[0] if isinstance(peer, tuple) and peer else peer
        self._logger.warning("malformed HTTP request from %s: %s%s", host or "-", kind,
                             f" ({suppressed} more not logged)" if suppressed else "")
