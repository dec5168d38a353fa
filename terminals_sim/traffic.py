"""Requests for the load runner and the demo stream, each with its expected answer.

`Traffic.send(i, scheduled)` is an `OpenLoop` sender: it takes the next terminal (round
robin) and the next *idle* holder that can present the credential the mode calls for,
builds the request (a card tap, or a QR from the pre-built pool), asks the oracle what
the answer must be, sends it, checks it and lets the oracle learn from it.

A holder is never in two requests at once: per-holder state (the card counter, the
daily concession cap, once-per-day entries) is then decided in the order the simulator
predicts, even under load. With `fault_share`, a few requests are faults with a fixed
answer: a tap whose cryptogram was altered (`cryptogram_invalid`), a QR shown again
(`replayed`, or `qr_expired` if it has aged past 60 s), or a card reported lost
(`card_blocked`, when the block list was loaded).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from terminals_sim.card import Card
from terminals_sim.cityconf import CityConfig
from terminals_sim.crowd import Crowd
from terminals_sim.expect import Expected, describe_mismatch, shape_problems
from terminals_sim.open_loop import Outcome
from terminals_sim.oracle import Oracle
from terminals_sim.population import Holder
from terminals_sim.qrpool import QrPool
from terminals_sim.terminal import Reply, TerminalClient
from terminals_sim.terminals import SimTerminal

__all__ = ["MODES", "OfflineDesk", "Traffic"]

# mode -> (terminal kinds, share of QR codes among credentials)
MODES: dict[str, tuple[tuple[str, ...], float]] = {
    "bus-taps": (("bus",), 0.0),
    "bus-qr": (("bus",), 1.0),
    "gate-qr": (("gate",), 1.0),
    "mixed": (("bus", "gate"), 0.4),
}


class OfflineDesk(Protocol):
    """Where a terminal that has lost its link decides alone (offline_spells.py)."""

    def decide(self, terminal: SimTerminal, credential: dict[str, Any], now: int,
               holder: Holder | None) -> Outcome | None:
        """The terminal's own decision, or None when it is online."""


@dataclass
class _Planned:
    body: bytes
    credential: dict[str, Any]
    expected: list[Expected]
    holder: Holder | None  # None for a fault whose answer ignores usage
    qr: tuple[dict[str, Any], int] | None = None  # (credential, gen_time) of a QR scan
    lock: str | None = None  # held while in flight: a holder_ref or a card_no
    request_id: str = ""


def _planned(terminal: SimTerminal, credential: dict[str, Any], now: float,
             expected: list[Expected], holder: Holder | None = None, *,
             lock: str | None = None, qr: tuple[dict[str, Any], int] | None = None) -> _Planned:
    request_id = TerminalClient.new_request_id()
    return _Planned(terminal.body(credential, now, request_id=request_id), credential,
                    expected, holder, qr, lock, request_id)


class Traffic:
    """Builds, sends and checks one request per call."""

    def __init__(self, city: CityConfig, terminals: Sequence[SimTerminal],
                 holders: Sequence[Holder], oracle: Oracle, *, mode: str, qr_pool: QrPool,
                 seed: int = 0, fault_share: float = 0.0,
                 pick: Callable[[int], SimTerminal] | None = None,
                 crowd: Crowd | None = None, offline: OfflineDesk | None = None) -> None:
        kinds, self.qr_share = MODES[mode]
        self.city, self.oracle, self.pool = city, oracle, qr_pool
        self.terminals = [t for t in terminals if t.spec.kind in kinds]
        if not self.terminals:
            raise LookupError(f"no enabled terminal of kind {kinds} with a secret")
        self.card_holders = deque(h for h in holders if h.card is not None)
        self.qr_holders = deque(h for h in holders if h.has_ecard)
        if (self.qr_share < 1 and not self.card_holders) or (self.qr_share > 0
                                                              and not self.qr_holders):
            raise LookupError(f"mode {mode} needs holders with cards and/or e-cards")
        self.busy: set[str] = set()
        self.rng = random.Random(seed)
        self.fault_share = fault_share
        self.recent_qrs: deque[tuple[dict[str, Any], int]] = deque(maxlen=64)
        self.lost_cards: deque[Card] = deque((c for h in holders for c in h.lost_cards),
                                             maxlen=1000)
        self.pick = pick or (lambda i: self.terminals[i % len(self.terminals)])
        self.crowd = crowd  # who scans next follows their outings, not a round robin
        self.offline = offline

    def _next_holder(self, queue: deque[Holder]) -> Holder | None:
        # a bounded search: when the service stalls, most holders are in flight and a
        # full scan per request would make the generator the next thing to stall
        for _ in range(min(len(queue), 256)):
            holder = queue[0]
            queue.rotate(-1)
            if holder.ref not in self.busy:
                return holder
        return None  # every holder is in flight: the population is too small for the rate

    def _plan(self, terminal: SimTerminal, now: float) -> _Planned | None:
        if self.fault_share and self.rng.random() < self.fault_share:
            fault = self._fault(terminal, now)
            if fault is not None:
                return fault
        chosen = self._holder_for(terminal, now)
        if chosen is None:
            return None
        holder, use_qr = chosen
        expected = self.oracle.expect(holder, terminal.spec, now)
        if use_qr:
            qr, gen_time = self.pool.take(holder, now)
            credential = terminal.qr_credential(qr)
            return _planned(terminal, credential, now, expected, holder, lock=holder.ref,
                            qr=(credential, gen_time))
        assert holder.card is not None  # card_holders holds card carriers only
        return _planned(terminal, terminal.tap_credential(holder.card, now), now, expected,
                        holder, lock=holder.ref)

    def _holder_for(self, terminal: SimTerminal, now: float) -> tuple[Holder, bool] | None:
        """The next holder, and whether they show a QR (else they tap a card)."""
        if self.crowd is None:
            use_qr = self.rng.random() < self.qr_share
            holder = self._next_holder(self.qr_holders if use_qr else self.card_holders)
            return None if holder is None else (holder, use_qr)
        holder = self.crowd.traveller(terminal.spec, self.city.local(now), self.busy)
        if holder is None:
            return None
        # a holder with both carriers shows the phone at the mode's share
        return holder, holder.has_ecard and (holder.card is None
                                             or self.rng.random() < self.qr_share)

    def _fault(self, terminal: SimTerminal, now: float) -> _Planned | None:
        roll = self.rng.random()
        if self.lost_cards and self.oracle.registry_loaded and roll < 0.2:  # 挂失 card tried
            card = self.rng.choice(self.lost_cards)
            if card.card_no not in self.busy:  # two taps in flight could swap counters
                return _planned(terminal, terminal.tap_credential(card, now), now,
                                [Expected.deny("card_blocked")], lock=card.card_no)
        if self.recent_qrs and roll < 0.6:  # a screenshot shown again
            credential, gen_time = self.recent_qrs.pop()
            age = now - gen_time
            # replay is step 7; a QR past 60 s fails step 6 first (boundary: either)
            answers = ["qr_expired"] if age > 61 else ["replayed", "qr_expired"] \
                if age > 59 else ["replayed"]
            return _planned(terminal, credential, now, [Expected.deny(a) for a in answers])
        holder = self._next_holder(self.card_holders)
        if holder is None or holder.card is None:
            return None
        credential = terminal.tap_credential(holder.card, now)
        last = credential["cryptogram"][-1]
        credential["cryptogram"] = credential["cryptogram"][:-1] + ("0" if last != "0" else "1")
        return _planned(terminal, credential, now, [Expected.deny("cryptogram_invalid")])

    async def send(self, i: int, scheduled: float) -> Outcome:
        terminal = self.pick(i)
        now = time.time()
        planned = self._plan(terminal, now)
        if planned is None:
            return Outcome("no_idle_holder", error=True)
        if self.offline is not None:  # a terminal in an offline spell sends nothing
            local = self.offline.decide(terminal, planned.credential, int(now), planned.holder)
            if local is not None:
                return local
        if planned.lock is not None:
            self.busy.add(planned.lock)
        try:
            reply = await terminal.send(planned.body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome(_error_kind(exc), error=True)
        finally:
            if planned.lock is not None:
                self.busy.discard(planned.lock)
        return self._check(terminal, planned, reply, now)

    def _check(self, terminal: SimTerminal, planned: _Planned, reply: Reply,
               sent: float) -> Outcome:
        expected = planned.expected
        problem = describe_mismatch(expected, reply.status, reply.body)
        holder = planned.holder
        if problem and holder is not None:  # maybe the hour turned while in flight
            expected = expected + self.oracle.expect(holder, terminal.spec, time.time())
            problem = describe_mismatch(expected, reply.status, reply.body)
        problem = problem or shape_problems(planned.request_id, reply.status, reply.body)
        if holder is not None:
            self.oracle.observe(holder, terminal.spec, sent, companion=False,
                                status=reply.status, body=reply.body)
        if planned.qr is not None:  # decided, so its nonce is spent: fit for a replay
            self.recent_qrs.append(planned.qr)
        label = (f"{reply.body.get('decision')}/{reply.body.get('reason')}"
                 if reply.status == 200 else f"HTTP {reply.status}")
        mismatch = None
        if problem:
            mismatch = {"terminal": terminal.id, "problem": problem,
                        "expected": [e.label() for e in expected],
                        "request": SimTerminal.request_of(planned.body),
                        "status": reply.status, "response": reply.body}
        return Outcome(label, mismatch=mismatch)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect_error"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server_disconnected"
    return type(exc).__name__
