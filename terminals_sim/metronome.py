"""`Metronome`: run a callback on the event loop when each request of a schedule falls due.

An open-loop runner sends request i at `t0 + i * interval` and counts its latency from
that moment, so how late requests leave is in every latency figure. Event loops' timers
wake in whole milliseconds (asyncio rounds epoll's timeout up to 1 ms, libuv counts in
ms): ~0.5 ms late on average. A metronome's thread sleeps with `time.sleep` (nanosleep,
its timer slack cut to 1 ns) and wakes the loop with `call_soon_threadsafe`: ~0.1 ms.

The thread only sleeps and posts; the callback runs on the loop's thread, so the runner's
state stays single-threaded. Wakes are one at a time (a busy loop gets one when it is
free, not a backlog) and at least `min_gap_s` apart (at high rates one wake serves every
request due by then). `position()` tells the thread how far the runner has got on its
own (e.g. sending from an answer's callback), so it does not wake the loop for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["Metronome"]

MIN_GAP_S = 0.00015  # the thread wakes the loop at most this often
STOP_CHECK_S = 0.01  # it sleeps or waits at most this long at a time: stop() is noticed
JOIN_S = 0.1  # stop() waits this long for the thread (a daemon: it cannot block exit)
THREAD_NAME = "metronome"
PR_SET_TIMERSLACK = 29  # <linux/prctl.h>


class Metronome:
    """Calls `tick()` on `loop` at `t0 + i * interval` for i < `count`, in `clock` seconds.

    `position()` is the first request not yet sent; `tick()` should send everything due.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, t0: float, interval: float,
                 count: int, position: Callable[[], int], tick: Callable[[], None],
                 min_gap_s: float = MIN_GAP_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._loop, self._t0, self._interval, self._count = loop, t0, interval, count
        self._position, self._tick, self._min_gap_s = position, tick, min_gap_s
        self._clock = clock
        self._stop = threading.Event()
        self._served = threading.Event()  # the last wake has run on the loop
        self._served.set()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more ticks; waits briefly for the thread (safe to call more than once)."""
        self._stop.set()
        self._served.set()  # the thread may be waiting for a wake the loop will not run
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_S)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        """Sleep until the next request is due, then wake the loop; until all are covered.

        `cursor` is the first request no wake has covered yet. It is not read back from
        `position()` after each wake, which would mean waiting for the wake to run; but
        the runner may pass it, and then the thread sleeps longer."""
        _fine_timer_slack()
        cursor, last = self._position(), 0.0
        while not self._stop.is_set():
            cursor = max(cursor, self._position())
            if cursor >= self._count:
                return  # every request is covered
            now = self._clock()
            wake = max(self._t0 + cursor * self._interval, last + self._min_gap_s)
            if wake > now:
                time.sleep(min(wake - now, STOP_CHECK_S))
            elif not self._served.is_set():  # the last wake has not run: the loop is busy
                if not self._await_served():
                    return
            elif self._post():
                cursor, last = int((now - self._t0) / self._interval) + 1, now  # all due now
            else:
                return

    def _post(self) -> bool:
        """Wake the loop to send what is due; False if the loop is closed."""
        self._served.clear()
        try:
            self._loop.call_soon_threadsafe(self._on_loop)
        except RuntimeError:
            return False
        return True

    def _on_loop(self) -> None:
        try:
            if not self._stop.is_set():
                self._tick()
        finally:
            self._served.set()  # after the tick: then the thread may post the next

    def _await_served(self) -> bool:
        """Wait for the loop to run the last wake; False once the loop stops or we do.

        Only when a wake falls due before the last one ran: waiting after every wake
        would cost a second thread switch per request."""
        while not self._served.wait(STOP_CHECK_S):
            if self._stop.is_set() or not self._loop.is_running():
                return False
        return True


def _fine_timer_slack() -> None:
    """End this thread's sleeps on time: Linux lets a sleep overrun by the thread's timer
    slack (50 µs by default, to batch wake-ups), a quarter of what is left of the lag."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):  # no libc, or no prctl in it
            ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1), ctypes.c_ulong(0),
                                    ctypes.c_ulong(0), ctypes.c_ulong(0))
