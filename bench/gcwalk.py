"""Whether the cyclic garbage collector walks the hot caches, and what that costs.

The card-key cache holds up to 65,536 SM4-CMAC contexts and the terminal-key cache up to
8,192 HMAC contexts, both in `validator.lru.Lru`. A plain dict whose keys and values the
collector does not track is itself untracked, so no collection walks it; whether a
context object is tracked is up to the `cryptography` release (50 does not track them,
51 does: pyproject.toml constrains the lock accordingly). These rows show it for the
installed release — `tracked` 0 or 1 — and the price of one full collection with both
caches full beside the same collection without them, so that an upgrade shows its cost
here rather than as a latency tail in production.
"""

from __future__ import annotations

import gc
import os
import time

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as keyed_hmac
from cryptography.hazmat.primitives.ciphers import algorithms

from validator.lru import Lru

__all__ = ["gc_rows"]

CARD_KEYS = 65_536
TERMINAL_KEYS = 8_192

Row = dict[str, object]


def _full_collection_ms(repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def gc_rows() -> list[Row]:
    """Rows in bench.micro's shape: {"name", "us", "note"}."""
    baseline_ms = _full_collection_ms()
    card_keys: Lru[str, cmac.CMAC] = Lru(CARD_KEYS)
    for serial in range(CARD_KEYS):
        context = cmac.CMAC(algorithms.SM4(os.urandom(16)))
        card_keys.put(f"card-{serial}", context)
    terminal_keys: Lru[bytes, keyed_hmac.HMAC] = Lru(TERMINAL_KEYS)
    for _ in range(TERMINAL_KEYS):
        secret = os.urandom(32)
        terminal_keys.put(secret, keyed_hmac.HMAC(secret, hashes.SHA256()))
    gc.collect()  # let go of what the filling tracked only for a moment
    full_ms = _full_collection_ms()
    rows: list[Row] = [
        {"name": "card-key cache walked by the collector", "us": float(card_keys.tracked_by_gc()),
         "note": "1 = yes: every full collection walks its 65,536 CMAC contexts"},
        {"name": "terminal-key cache walked by the collector",
         "us": float(terminal_keys.tracked_by_gc()),
         "note": "1 = yes: every full collection walks its 8,192 HMAC contexts"},
        {"name": "full gc.collect(), caches full (ms)", "us": round(full_ms, 2),
         "note": f"without them: {baseline_ms:.2f} ms"},
    ]
    del card_keys, terminal_keys
    return rows
