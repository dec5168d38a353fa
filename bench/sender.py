"""The lean generator's sending loop: a schedule, keep-alive connections, and the tally.

No task per request and no client library: each connection is an `asyncio.Protocol`
holding at most one request in flight, and one callback (`OpenLoop._tick`) hands every
due request to a free connection or to the FIFO queue. A `Metronome`
(terminals_sim/metronome.py) runs it at each due time, ~0.1 ms late where the event
loop's own 1 ms timer was ~0.5 ms late — a lag every latency carries, since they run
from the scheduled time.

The expected answer to every request is HTTP 200 with `"decision":"accept"` and
`"reason":"ok"` (§4): the requests are fresh, valid credentials at bus readers, where
every holder rides.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, cast

from bench.http1 import BadResponse, Response, ResponseParser
from terminals_sim.metronome import Metronome
from terminals_sim.stats import percentile

__all__ = ["OpenLoop", "render"]

MAX_SAMPLES = 10  # mismatching bodies kept for the report
ACCEPTED = (b'"decision":"accept"', b'"reason":"ok"')


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `index` is the request in flight, or -1."""

    def __init__(self, owner: OpenLoop) -> None:
        self.owner, self.parser, self.index = owner, ResponseParser(), -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's do not subclass asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            responses = self.parser.feed(data)
        except BadResponse:
            self.owner.broken(self, "bad_response")
            return
        for response in responses:
            self.owner.answered(self, response)

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self)

    def send(self, index: int, request: bytes) -> None:
        assert self.transport is not None
        self.index = index
        self.transport.write(request)


class OpenLoop:
    """Sends `requests[i]` at `t0 + i / rate` for `duration_s`; see `report()`."""

    def __init__(self, requests: Sequence[bytes], rate: float, duration_s: float, *,
                 drain_s: float = 5.0) -> None:
        self.requests, self.rate, self.duration_s, self.drain_s = \
            requests, rate, duration_s, drain_s
        self.n = min(len(requests), max(round(rate * duration_s), 1))
        self.interval = 1.0 / rate
        self.latencies, self.lags = array("d"), array("d")  # seconds
        # from the moment each request was written until its answer: the latency the
        # system itself adds, without the generator's timer lag or its queue
        self.service = array("d")
        self.sent_at = array("d", bytes(8 * self.n))
        self.decisions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.mismatches, self.samples = 0, list[str]()
        self.failed = 0  # requests that got no answer: their connection failed
        self.connections: list[_Connection] = []
        self.free: list[_Connection] = []
        self.queue: deque[int] = deque()
        self.next = self.in_flight = 0
        self.t0 = self.last_answer = 0.0
        self.cpu_s = self.elapsed_s = 0.0
        self.closing = False
        self._metronome: Metronome | None = None
        self._finished: asyncio.Future[None] | None = None
        self._endpoint = ("127.0.0.1", 0)
        self._reopening: set[asyncio.Task[None]] = set()  # tasks need a reference

    async def connect(self, host: str, port: int, count: int) -> None:
        """Open `count` connections (all before the clock starts)."""
        self._endpoint = (host, port)
        results = await asyncio.gather(*(self._open() for _ in range(count)),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if len(failures) == count:
            raise ConnectionError(f"no connection to {host}:{port}: {failures[0]!r}")
        if failures:
            self.errors["connect_failed"] += len(failures)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: _Connection(self), *self._endpoint)
        self.connections.append(connection)
        self._release(connection, time.perf_counter(), busy=False)

    async def run(self) -> None:
        """The run itself: schedule, then drain; bounded by duration + drain."""
        loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        cpu = time.process_time()
        self.t0 = time.perf_counter()
        self._tick()
        if self.next < self.n:
            self._metronome = Metronome(loop, t0=self.t0, interval=self.interval, count=self.n,
                                        position=lambda: self.next, tick=self._tick)
            self._metronome.start()
        await asyncio.wait([self._finished], timeout=self.duration_s + self.drain_s)
        self.elapsed_s = max(self.last_answer - self.t0, self.duration_s)
        self.cpu_s = time.process_time() - cpu

    def close(self) -> None:
        self.closing = True
        if self._metronome is not None:
            self._metronome.stop()
        for task in self._reopening:
            task.cancel()
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()

    # --- the schedule ------------------------------------------------------------------

    def _tick(self) -> None:
        self._dispatch(time.perf_counter())
        if self.next >= self.n:
            self._check_finished()

    def _dispatch(self, now: float) -> None:
        """Every request due by `now` onto a free connection, or into the queue."""
        due = min(self.n, int((now - self.t0) * self.rate) + 1)
        while self.next < due:
            index = self.next
            self.next = index + 1
            if self.free:
                self._send(self.free.pop(), index, now)
            else:
                self.queue.append(index)

    def _send(self, connection: _Connection, index: int, now: float) -> None:
        self.in_flight += 1
        self.lags.append(now - self.t0 - index * self.interval)
        self.sent_at[index] = now
        connection.send(index, self.requests[index])

    def _release(self, connection: _Connection, now: float, *, busy: bool = True) -> None:
        """`connection` is free again: give it the oldest queued request, if any."""
        if busy:
            self.in_flight -= 1
            connection.index = -1
        if self.queue and not self.closing:
            self._send(connection, self.queue.popleft(), now)
        else:
            self.free.append(connection)
            self._check_finished()

    def _check_finished(self) -> None:
        if self.next >= self.n and not self.in_flight and not self.queue and \
                self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    # --- what comes back ---------------------------------------------------------------

    def answered(self, connection: _Connection, response: Response) -> None:
        index = connection.index
        if index < 0:
            self.errors["unsolicited_response"] += 1
            self.broken(connection, None)
            return
        now = time.perf_counter()
        self.latencies.append(now - self.t0 - index * self.interval)
        self.service.append(now - self.sent_at[index])
        self.last_answer = now
        if response.status != 200:
            self.errors[f"http_{response.status}"] += 1
        elif ACCEPTED[0] in response.body and ACCEPTED[1] in response.body:
            self.decisions["accept/ok"] += 1
        else:
            self._mismatch(response.body)
        if response.close:  # the server hangs up after this answer: lost() replaces it
            self.in_flight -= 1
            connection.index = -1
            if connection.transport is not None:
                connection.transport.close()
        else:
            self._release(connection, now)
        if self.next < self.n:  # awake anyway: send what fell due since the last tick
            self._dispatch(now)

    def _mismatch(self, body: bytes) -> None:
        self.mismatches += 1
        try:
            doc = json.loads(body)
            self.decisions[f"{doc.get('decision')}/{doc.get('reason')}"] += 1
        except (ValueError, AttributeError):
            self.decisions["unreadable"] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(body[:600].decode(errors="replace"))

    def broken(self, connection: _Connection, error: str | None) -> None:
        """Give the connection up; its request in flight, if any, failed with `error`."""
        if connection.index >= 0:
            self.in_flight -= 1
            self.failed += 1
            connection.index = -1
            self.errors[error or "connection_closed"] += 1
        if connection.transport is not None:
            connection.transport.close()  # -> lost()

    def lost(self, connection: _Connection) -> None:
        if self.closing:
            return  # the run is over: what is still in flight counts as unfinished
        if connection.index >= 0:  # the server closed with a request in flight
            self.broken(connection, "connection_closed")
        if connection in self.free:
            self.free.remove(connection)
        if connection in self.connections:
            self.connections.remove(connection)
            task = asyncio.get_running_loop().create_task(self._reopen())
            self._reopening.add(task)
            task.add_done_callback(self._reopening.discard)
        self._check_finished()

    async def _reopen(self) -> None:
        """Replace a lost connection, to keep their number."""
        try:
            await self._open()
        except OSError:
            self.errors["connect_failed"] += 1

    # --- the report --------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Figures in the same keys as the simulator's report.json, and the generator's."""
        answered = len(self.latencies)
        unfinished = self.n - answered - self.failed
        errors = dict(self.errors.most_common())
        if unfinished > 0:
            errors["unfinished"] = unfinished
        return {
            "offered_rate": self.n / self.duration_s,
            "achieved_rate": answered / max(self.elapsed_s, 1e-9),
            "scheduled": self.n,
            "answered": answered,
            "elapsed_s": round(self.elapsed_s, 3),
            "latency_ms": _summary_ms(self.latencies),
            "send_lag_ms": _summary_ms(self.lags),
            "service_ms": _summary_ms(self.service),
            "decisions": dict(self.decisions.most_common()),
            "errors": errors,
            "mismatches": self.mismatches,
            "mismatch_samples": self.samples,
            "generator_cpu_s": round(self.cpu_s, 4),
            "generator_us_per_request": round(self.cpu_s / max(self.next, 1) * 1e6, 1),
        }


def _summary_ms(seconds: array[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    figures = {f"p{q:g}": round(percentile(ordered, q) * 1e3, 3) for q in (50, 90, 99, 99.9)}
    figures["max"] = round((ordered[-1] if ordered else 0.0) * 1e3, 3)
    figures["mean"] = round(sum(ordered) / max(len(ordered), 1) * 1e3, 3)
    return figures


def render(doc: dict[str, Any]) -> str:
    """The text summary; its first line starts with "offered" (bench/steps.py waits for it)."""
    lat, lag = doc["latency_ms"], doc["send_lag_ms"]
    return "\n".join([
        f"offered {doc['offered_rate']:.0f}/s, achieved {doc['achieved_rate']:.0f}/s "
        f"({doc['answered']} answers to {doc['scheduled']} requests in {doc['elapsed_s']:.1f} s)",
        "latency (ms, from the scheduled time): " + "  ".join(
            f"{k} {lat[k]:.2f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
        f"send lag (ms): p50 {lag['p50']:.2f}  p99 {lag['p99']:.2f}  max {lag['max']:.2f}",
        "from the send (ms): " + "  ".join(
            f"{k} {doc['service_ms'][k]:.2f}" for k in ("p50", "p90", "p99", "max")),
        "decisions: " + (", ".join(f"{k} {v}" for k, v in doc["decisions"].items()) or "none"),
        "errors: " + (", ".join(f"{k} {v}" for k, v in doc["errors"].items()) or "none"),
        f"mismatches: {doc['mismatches']}",
        f"generator CPU: {doc['generator_cpu_s']:.2f} s, "
        f"{doc['generator_us_per_request']:.1f} µs per request",
        *(f"  MISMATCH {sample}" for sample in doc["mismatch_samples"]),
    ])
