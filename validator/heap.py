"""The process's heap: what start-up built is frozen out of the garbage collector's walks."""

from __future__ import annotations

import gc
import logging

__all__ = ["YOUNG_GC_THRESHOLD", "freeze_start_up_heap"]

log = logging.getLogger("validator")

YOUNG_GC_THRESHOLD = 10_000  # CPython's default is 700: see freeze_start_up_heap


def freeze_start_up_heap() -> None:
    """Keep the cyclic garbage collector off the latency path (measured: docs/benchmarks.md).

    `gc.freeze()` hides what start-up built — modules, configuration, keys, the app: ~75,000
    tracked objects that live as long as the process — from every later collection; each
    full one walked them all, ~30 ms on the project's VM, a few times a minute under load
    (the benchmark's p99.9). Frozen objects are still freed by reference counting; only a
    reference cycle among them would never be, and nothing built at start-up is replaced
    while the process runs (keys are rotated by rolling the processes).

    A young collection once allocations outnumber deallocations by YOUNG_GC_THRESHOLD, not
    CPython's 700: under load the young generation is mostly requests in flight
    (3,000-4,000 objects at 2,500 taps/s), which every collection walked and promoted, to
    walk them again a generation up: 0.5 s of collections in a one-minute run, 27 ms with
    10,000. Validations make little cyclic garbage, so collections become rare and the
    garbage they find stays small.
    """
    gc.collect()
    gc.freeze()
    _, *older = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *older)
    log.info("gc: start-up heap frozen (%d objects), young threshold %d",
             gc.get_freeze_count(), YOUNG_GC_THRESHOLD)
