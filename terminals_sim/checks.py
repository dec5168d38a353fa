"""Sending a request with its expectation, and keeping the verdicts.

`Stage` is what a scenario works with: the fleet, the oracle, the cast of holders and a
`present` method that stamps a request with the current time, computes what the answer
must be (given explicitly, or by the oracle at the send and the receive instant, so a
scan that straddles 09:00 may get either answer), sends it, checks the answer, lets the
oracle learn from it and records a `Check`. `ScenarioReport` collects the checks.
The helpers at the end pick terminals and credentials the way every scenario needs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from terminals_sim.cast import Cast
from terminals_sim.cityconf import CityConfig
from terminals_sim.expect import Expected, describe_mismatch, shape_problems
from terminals_sim.keyset import SimKeys
from terminals_sim.oracle import Oracle
from terminals_sim.population import Holder, Population
from terminals_sim.terminal import Reply, TerminalClient
from terminals_sim.terminals import Fleet, SimTerminal

__all__ = ["Check", "Scenario", "ScenarioReport", "Stage", "capacity_spot", "credential_of",
           "pick_bus_pair", "pick_spot_gates"]


@dataclass
class Check:
    """One request, what it should have got and what it got."""

    scenario: str
    step: str
    terminal: str
    request: dict[str, Any]
    expected: list[Expected]
    status: int
    response: dict[str, Any]
    mismatch: str | None

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "step": self.step, "terminal": self.terminal,
                "expected": [e.label() for e in self.expected], "status": self.status,
                "response": self.response, "request": self.request, "mismatch": self.mismatch}


@dataclass
class ScenarioReport:
    checks: list[Check] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # scenario -> why
    errors: dict[str, str] = field(default_factory=dict)  # scenario -> exception text
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if c.mismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors

    def by_scenario(self) -> dict[str, tuple[int, int]]:
        """scenario -> (checks, mismatches)."""
        total, bad = Counter[str](), Counter[str]()
        for c in self.checks:
            total[c.scenario] += 1
            bad[c.scenario] += bool(c.mismatch)
        return {name: (total[name], bad[name]) for name in total}

    def text(self) -> str:
        lines = [f"{name:<24} {n:>5} checks  {bad} mismatches"
                 for name, (n, bad) in self.by_scenario().items()]
        lines += [f"{name:<24} skipped: {why}" for name, why in self.skipped.items()]
        lines += [f"{name:<24} ERROR: {err}" for name, err in self.errors.items()]
        lines += [f"note: {note}" for note in self.notes]
        for c in self.mismatches:
            lines.append(f"MISMATCH {c.scenario}/{c.step} on {c.terminal}: {c.mismatch}\n"
                         f"  request:  {c.request}\n  response: {c.status} {c.response}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {len(self.checks)} checks, {len(self.mismatches)} mismatches, "
                     f"{len(self.errors)} errors, {len(self.skipped)} skipped")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": len(self.checks),
                "mismatches": [c.to_json() for c in self.mismatches],
                "by_scenario": {k: {"checks": n, "mismatches": b}
                                for k, (n, b) in self.by_scenario().items()},
                "skipped": self.skipped, "errors": self.errors, "notes": self.notes}


@dataclass
class Stage:
    """Everything a scenario needs; `scenario` names the one running."""

    base_url: str  # the operator API (registry, settlement)
    terminal_url: str  # POST /v1/validations: base_url, or a validator's --terminal-port
    city: CityConfig
    keys: SimKeys
    session: aiohttp.ClientSession
    fleet: Fleet
    oracle: Oracle
    population: Population
    report: ScenarioReport
    admin_token: str | None = None
    scenario: str = ""

    @staticmethod
    def now() -> float:
        return time.time()

    async def present(self, terminal: SimTerminal, credential: dict[str, Any], *,
                      step: str, holder: Holder | None = None,
                      expect: list[Expected] | Expected | None = None,
                      companion: bool = False, card_no: str | None = None,
                      at: float | None = None) -> Reply:
        """Send a credential as `terminal` would, check the answer, record the verdict.

        Without `expect`, the oracle predicts the answer for `holder` (required then).
        `at` is the scan time the credential was made for, by default now: a card's
        cryptogram covers `scanned_at` to the second, so a tap made a moment before a
        second boundary and sent after it would no longer verify.
        """
        at = self.now() if at is None else at
        body = terminal.body(credential, at, companion=companion)
        alternatives = self._expected(expect, holder, terminal, at, companion, card_no)
        reply = await terminal.send(body)
        if expect is None and holder is not None:
            for late in self._expected(None, holder, terminal, self.now(), companion, card_no):
                if late not in alternatives:
                    alternatives.append(late)
        if holder is not None:
            self.oracle.observe(holder, terminal.spec, at, companion=companion,
                                status=reply.status, body=reply.body)
        self.record(step, terminal.id, body, alternatives, reply)
        return reply

    async def scan(self, terminal: SimTerminal, holder: Holder, prefer: str = "card", *,
                   step: str, expect: list[Expected] | Expected | None = None,
                   companion: bool = False) -> Reply:
        """`holder` shows `terminal` a fresh card tap or QR (`prefer`), made for the very
        second the request says it was scanned; see `present`."""
        at = self.now()
        return await self.present(terminal, credential_of(terminal, holder, at, prefer),
                                  step=step, holder=holder, expect=expect,
                                  companion=companion, at=at)

    def _expected(self, expect: list[Expected] | Expected | None, holder: Holder | None,
                  terminal: SimTerminal, at: float, companion: bool,
                  card_no: str | None) -> list[Expected]:
        if isinstance(expect, Expected):
            return [expect]
        if expect is not None:
            return list(expect)
        if holder is None:
            raise ValueError("present() needs an expectation or a holder")
        return self.oracle.expect(holder, terminal.spec, at, companion=companion, card_no=card_no)

    async def send_raw(self, client: TerminalClient, body: bytes, *, step: str,
                       expect: Expected, now: int | None = None) -> Reply:
        """Send bytes as they are (malformed bodies, foreign signatures) and check."""
        reply = await client.post(body, now=now)
        self.record(step, client.terminal_id, body, [expect], reply)
        return reply

    def record(self, step: str, terminal_id: str, body: bytes, expected: list[Expected],
               reply: Reply) -> None:
        request = SimTerminal.request_of(body)
        problems = [p for p in (describe_mismatch(expected, reply.status, reply.body),
                                shape_problems(request.get("request_id"), reply.status,
                                               reply.body)) if p]
        self.report.checks.append(Check(self.scenario, step, terminal_id, request, expected,
                                        reply.status, reply.body, "; ".join(problems) or None))

    def fail(self, step: str, problem: str) -> None:
        """Record a failed aggregate check (one not tied to a single response)."""
        self.report.checks.append(Check(self.scenario, step, "-", {}, [], 0, {}, problem))

    def passed(self, step: str) -> None:
        self.report.checks.append(Check(self.scenario, step, "-", {}, [], 0, {}, None))


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Stage, Cast], Awaitable[None]]
    needs_registry: bool = False


def credential_of(terminal: SimTerminal, holder: Holder, at: float,
                  prefer: str = "card") -> dict[str, Any]:
    """A fresh tap of the holder's card, or a fresh QR from their phone."""
    if holder.card is not None and (prefer == "card" or not holder.has_ecard):
        return terminal.tap_credential(holder.card, at)
    return terminal.qr_credential(holder.phone.qr(int(at)))


def pick_bus_pair(st: Stage) -> tuple[SimTerminal, SimTerminal]:
    """Two bus readers, on one route when possible (a passenger changing buses)."""
    buses = st.fleet.buses
    if len(buses) < 2:
        raise LookupError("need two enabled bus readers with secrets")
    same_route = [t for t in buses[1:] if t.spec.venue == buses[0].spec.venue]
    return buses[0], (same_route or buses[1:])[0]


def capacity_spot(st: Stage) -> str:
    """The spot with the smallest capacity: the capacity scenario fills it, so every
    other scenario keeps away from it."""
    spots = {t.spec.venue_id for t in st.fleet.gates}
    return min(spots, key=lambda s: (st.city.spots[s].capacity_per_day, s))


def pick_spot_gates(st: Stage) -> list[SimTerminal]:
    """The gates of one spot (not the capacity spot), an open one if any is open now."""
    full = capacity_spot(st)
    local = st.city.local(st.now())
    spots = sorted({t.spec.venue_id for t in st.fleet.gates} - {full})
    if not spots:
        raise LookupError("need a spot with gates besides the capacity spot")
    open_now = [s for s in spots if st.city.spots[s].is_open(local)]
    # a spot with two gates lets a scenario change gates; any open spot beats a closed one
    spots.sort(key=lambda s: (s not in open_now, len(st.fleet.at_venue(f"spot:{s}")) < 2))
    chosen = spots[0]
    if chosen not in open_now:
        st.report.notes.append(f"{st.scenario}: every spot is closed now "
                               f"({local:%H:%M}): spot checks expect venue_closed")
    return st.fleet.at_venue(f"spot:{chosen}")
