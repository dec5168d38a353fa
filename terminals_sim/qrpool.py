"""QR codes built before a load run, so the generator spends no signature in the loop.

Each level-2 code costs ~150 µs (a signature, CBOR, Base45); at thousands per second that
would make the generator the bottleneck on a machine it shares with the server. A QR is
acceptable from `gen_time - 30 s` to `gen_time + 60 s` (§2 step 6), so the run is cut in
windows of `WINDOW_S` = 50 s and every QR of window w carries `gen_time = start + 50·w + 25`:
used anywhere in its window it is at most 25 s early and 25 s old. Each QR is used once
(its nonce is single-use). Large pools are built on every core with a process pool.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from terminals_sim.ecard import Alg, Phone, key_from_bytes, private_bytes
from terminals_sim.population import Holder

__all__ = ["QrPool", "estimate_build_s"]

WINDOW_S = 50
LEAD_S = 25
EARLY_OK_S = 28  # §2 allows gen_time up to 30 s ahead of the server's clock
OLD_OK_S = 55  # ... and up to 60 s behind it; a few seconds spare for the round trip
PARALLEL_FROM = 4000  # below this, a process pool costs more to start than it saves
BUILD_COST_S = 160e-6  # one QR on one core, to estimate how long a pre-build takes
SM2_BUILD_COST_S = 500e-6  # one all-SM2 QR: GmSSL's SM2 signature is the dearer part


def _phone_from(level1: bytes, key: bytes, alg: Alg) -> Phone:
    return Phone(level1, key_from_bytes(alg, key), alg)


def _key_bytes(phone: Phone) -> bytes:
    return private_bytes(phone.device_private_key)


def build_qrs(level1: bytes, key: bytes, alg: Alg, gen_time: int, count: int) -> list[str]:
    """`count` QR texts of one phone, all with `gen_time` (a process-pool task)."""
    phone = _phone_from(level1, key, alg)
    return [phone.qr(gen_time) for _ in range(count)]


def estimate_build_s(total: int, workers: int, sm2_share: float = 0.0) -> float:
    """Roughly how long `prebuild` of `total` codes takes (to place the windows), when
    `sm2_share` of them are SM2."""
    cores = workers if total >= PARALLEL_FROM else 1
    each = BUILD_COST_S * (1 - sm2_share) + SM2_BUILD_COST_S * sm2_share
    return total * each / max(cores, 1) * 1.3 + 0.5


class QrPool:
    """Pre-built QR codes per (window, holder), taken one at a time.

    `start_wall` is when the run is expected to begin (after the pre-build); window w
    serves wall times `[start + 50·w, start + 50·w + 50)`.
    """

    def __init__(self, start_wall: float) -> None:
        self.start_wall = start_wall
        self.codes: dict[tuple[int, str], deque[str]] = {}
        self.windows = 0
        self.built_live = 0  # codes the loop had to build itself (pool ran dry)

    def window(self, wall: float) -> int:
        last = max(self.windows - 1, 0)
        return min(max(int((wall - self.start_wall) // WINDOW_S), 0), last)

    def gen_time(self, window: int) -> int:
        return int(self.start_wall) + WINDOW_S * window + LEAD_S

    async def prebuild(self, holders: Sequence[Holder], total: int, duration_s: float,
                       *, workers: int | None = None) -> None:
        """Build about `total` codes, spread evenly over the holders and the windows."""
        if not holders or total <= 0:
            return
        windows = self.windows = max(math.ceil(duration_s / WINDOW_S), 1)
        # 10 % and one more each: busy holders make the round robin a little uneven
        per = math.ceil(total / windows / len(holders) * 1.1) + 1
        jobs = [(w, h) for w in range(windows) for h in holders]
        if total < PARALLEL_FROM or workers == 1:
            for w, h in jobs:
                self.codes[(w, h.ref)] = deque(h.phone.qr(self.gen_time(w)) for _ in range(per))
            return
        loop = asyncio.get_running_loop()
        # fork: workers need no re-import of __main__ (spawn would re-run the caller's
        # script). Call this before any thread exists (before the HTTP session opens):
        # a fork copies locks held by other threads, never their owners.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [loop.run_in_executor(pool, build_qrs, h.phone.level1,
                                            _key_bytes(h.phone), h.phone.alg, self.gen_time(w),
                                            per) for w, h in jobs]
            for (w, h), codes in zip(jobs, await asyncio.gather(*futures), strict=True):
                self.codes[(w, h.ref)] = deque(codes)

    def take(self, holder: Holder, wall: float) -> tuple[str, int]:
        """A fresh QR for `holder` usable at `wall`, and its gen_time."""
        window = self.window(wall)
        gen_time = self.gen_time(window)
        stock = self.codes.get((window, holder.ref))
        if stock and -EARLY_OK_S <= wall - gen_time <= OLD_OK_S:
            return stock.popleft(), gen_time
        self.built_live += 1
        gen_time = int(wall)
        return holder.phone.qr(gen_time), gen_time
