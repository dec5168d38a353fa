"""Whether the cyclic garbage collector walks the hot caches, and what that costs.

The card-key cache holds up to 65,536 SM4-CMAC contexts and the terminal-key cache up to
8,192 HMAC contexts, both in `validator.lru.Lru`. A plain dict whose keys and values the
collector does not track is itself untracked, so no collection walks it; whether a
context object is tracked is up to the `cryptography` release (50 does not track them,
51 does: pyproject.toml constrains the lock accordingly). These rows show it for the
installed release — `tracked` 0 or 1 — and the price of one full collection with both
caches full beside the same collection without them, so that an upgrade shows its cost
here rather than as a latency tail in production.

The QR level-1 cache (65,536 credentials by default) holds each device key in its
algorithm's packed form. Tongsuo's SM2 key objects are tracked (Python instances with a
`__dict__`), so SM2 packs a key as its point bytes and builds the object again at each
cached scan (validator/credentials/sm2.py); `sm2_rows` shows a full collection with the
cache full of SM2 credentials both ways, and what the rebuilding costs.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import time
import timeit

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives import hmac as keyed_hmac
from cryptography.hazmat.primitives.ciphers import algorithms

from validator.credentials import sm2
from validator.lru import Lru

__all__ = ["gc_rows", "sm2_rows"]

CARD_KEYS = 65_536
TERMINAL_KEYS = 8_192
LEVEL1_CREDENTIALS = 65_536  # settings.level1_cache_size
SM2_KEYS = 512  # distinct points; each entry still gets its own key object

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


def _sm2_cache(packed: bool) -> Lru[bytes, tuple[object, ...]]:
    """A level-1 cache full of SM2 credentials, its entries shaped as essc_qr's."""
    points = [sm2.ALGORITHM.pack(sm2.generate_private_key().public_key())
              for _ in range(SM2_KEYS)]
    today = dt.date.today()
    cache: Lru[bytes, tuple[object, ...]] = Lru(LEVEL1_CREDENTIALS)
    for i in range(LEVEL1_CREDENTIALS):
        point = points[i % SM2_KEYS]
        key = bytes(point) if packed else sm2.ALGORITHM.unpack(point)
        cache.put(os.urandom(16) + i.to_bytes(4, "big"),
                  (f"{i:032x}", 2**31, 0, key, today, "369900", "A12345678", sm2.COSE_ALG, 0))
    gc.collect()
    return cache


def sm2_rows() -> list[Row]:
    """The level-1 cache full of SM2 credentials: packed (the service's) and as objects."""
    rows: list[Row] = []
    for packed, how in ((True, "point bytes"), (False, "Tongsuo key objects")):
        without_ms = _full_collection_ms()
        cache = _sm2_cache(packed)
        rows.append({"name": f"full gc.collect(), 65,536 SM2 credentials as {how} (ms)",
                     "us": round(_full_collection_ms(), 2),
                     "note": f"walked: {int(cache.tracked_by_gc())}; just before, without: "
                             f"{without_ms:.2f} ms" + (" (the service's)" if packed else "")})
        del cache
        gc.collect()
    point = sm2.ALGORITHM.pack(sm2.generate_private_key().public_key())
    rows.append({"name": "SM2 key from its point bytes, per cached scan",
                 "us": round(min(timeit.repeat(lambda: sm2.ALGORITHM.unpack(point),
                                               number=500, repeat=5)) / 500 * 1e6, 2),
                 "note": "the price of the packed cache"})
    return rows
