"""Offline bundle sizes: a full bundle for a city-sized registry, and an hour's delta.

    python -m bench.bundle_size [--holders 100000] [--blocked-cards 10000]

A memory store holds `holders` registry records (veterans and disabled holders of every
grade, half with an end date) and `blocked_cards` card blocks; the service builds the
full bundle, then an hour of operator work happens (by default 100 new card blocks, 20
removed, 300 registry changes) and it answers the delta since the first bundle. Prints
one JSON line: bytes on the wire (gzip), build seconds, and the longest the event loop
went without running other tasks while each was built (`loop_stall_full_ms`: the day's
first build, which seals every holder; `loop_stall_delta_ms`: a refresh after that): a
validator answers gates on that loop, so a refresh must never hold it for long.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path

from validator.clock import FixedClock
from validator.config_folder import load_config
from validator.keygen import init_keyset
from validator.keyset import TRUST_LIST, load_keyset
from validator.offline.config import OfflineConfig
from validator.offline.service import BundleService
from validator.policy.types import Category
from validator.state.memory import MemoryStore
from validator.state.store import Block

CONFIG = Path(__file__).resolve().parents[1] / "config"
NOW = dt.datetime(2026, 12, 2, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


class StallWatch:
    """The longest gap between wake-ups of a task that asks to wake every millisecond."""

    def __init__(self) -> None:
        self.max_gap_s = 0.0
        self._last = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    def _note(self) -> None:
        now = time.perf_counter()
        self.max_gap_s = max(self.max_gap_s, now - self._last)
        self._last = now

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self._note()

    def __enter__(self) -> StallWatch:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._note()  # the gap up to now: a build that never yielded shows here
        self._task.cancel()


def _categories(rng: random.Random) -> tuple[Category, ...]:
    until = dt.date(2027, rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < .5 else None
    if rng.random() < 0.5:
        return (Category("veteran", None, until),)
    return (Category("disabled", rng.randint(1, 4), until),)


async def measure(holders: int, blocked: int, new_blocks: int, unblocks: int,
                  changes: int) -> dict[str, object]:
    rng = random.Random(7)
    config = load_config(CONFIG)
    clock = FixedClock(NOW)
    store = MemoryStore(clock=clock)
    refs = [f"{rng.getrandbits(128):032x}" for _ in range(holders)]
    await store.put_holders([(ref, _categories(rng)) for ref in refs])
    cards = [f"B{i:08d}" for i in range(blocked)]
    for card in cards:
        await store.put_block("card", card, Block("lost"))
    with tempfile.TemporaryDirectory() as tmp:
        keys_dir = Path(tmp) / "keys"
        init_keyset(keys_dir, region=config.city.region, terminal_ids=config.terminals)
        keys = load_keyset(keys_dir)
        trust = json.loads((keys_dir / TRUST_LIST).read_text())["keys"]
    assert keys.bundle_key is not None
    service = BundleService(store=store, holders=store.list_holders, config=config,
                            offline=OfflineConfig(), key=keys.bundle_key, trust_jwks=trust,
                            clock=clock)
    started = time.perf_counter()
    with StallWatch() as full_watch:
        await asyncio.sleep(0.002)  # the watch's first tick
        full = await service.bundle()
    full_s = time.perf_counter() - started
    for i in range(new_blocks):
        await store.put_block("card", f"N{i:08d}", Block("lost"))
    for card in cards[:unblocks]:
        await store.delete_block("card", card)
    await store.put_holders([(ref, _categories(rng)) for ref in rng.sample(refs, changes)])
    clock.advance(3600)
    started = time.perf_counter()
    with StallWatch() as delta_watch:
        await asyncio.sleep(0.002)
        delta = await service.bundle(since=full.seq)
    delta_s = time.perf_counter() - started
    assert not delta.full
    return {"holders": holders, "blocked_cards": blocked, "full_bytes": len(full.body),
            "full_build_s": round(full_s, 2), "delta_bytes": len(delta.body),
            "delta_build_s": round(delta_s, 2),
            "loop_stall_full_ms": round(1000 * full_watch.max_gap_s, 1),
            "loop_stall_delta_ms": round(1000 * delta_watch.max_gap_s, 1),
            "hour": {"new_blocks": new_blocks,
                                                         "unblocks": unblocks,
                                                         "registry_changes": changes}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--blocked-cards", type=int, default=10_000)
    parser.add_argument("--new-blocks", type=int, default=100)
    parser.add_argument("--unblocks", type=int, default=20)
    parser.add_argument("--registry-changes", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.holders, args.blocked_cards, args.new_blocks,
                                         args.unblocks, args.registry_changes))))


if __name__ == "__main__":
    main()
