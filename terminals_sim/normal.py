"""Normal traffic scenarios whose outcomes follow from policy.md by construction.

Each scenario is an async function of a `Stage` and the `Cast`. Expectations come from
the oracle (policy.md v1 + the current Asia/Shanghai time + what this run has done) or
are written out where the protocol fixes them; the validator's own code is never
consulted. Spots are closed at night: a spot check then expects `venue_closed` (the
oracle knows the hours) and the run says so in a note.
"""

from __future__ import annotations

import asyncio

from terminals_sim.cast import Cast
from terminals_sim.checks import Scenario, Stage, credential_of, pick_bus_pair, pick_spot_gates
from terminals_sim.expect import Expected
from terminals_sim.terminals import SimTerminal

__all__ = ["NORMAL"]


async def normal_traffic(st: Stage, cast: Cast) -> None:
    """A realistic mix: each crowd holder once on a bus and once at a gate."""
    bus, _ = pick_bus_pair(st)
    gate = pick_spot_gates(st)[0]
    for i, holder in enumerate(cast.crowd):
        prefer = "card" if i % 2 else "ecard"
        for terminal in (bus, gate):
            await st.scan(terminal, holder, prefer, step=f"crowd-{i}-{terminal.spec.kind}")


async def seniors(st: Stage, cast: Cast) -> None:
    """Age bands on the bus at the current local time (peak hours on working days)."""
    bus, _ = pick_bus_pair(st)
    local = st.city.local(st.now())
    working = st.city.calendar.is_working_day(local.date())
    st.report.notes.append(f"seniors: {local:%a %Y-%m-%d %H:%M} local, "
                           f"{'working' if working else 'non-working'} day")
    for name in ("senior60", "senior65", "senior70", "adult", "visitor_senior60"):
        holder = getattr(cast, name)
        for prefer in ("card", "ecard"):
            await st.scan(bus, holder, prefer, step=f"{name}-{prefer}")


async def daily_cap(st: Stage, cast: Cast) -> None:
    """A 75-year-old rides six times: four age-based free rides, then full fare."""
    bus_a, bus_b = pick_bus_pair(st)
    for ride in range(6):
        bus = (bus_a, bus_b)[ride % 2]
        await st.scan(bus, cast.senior_cap, step=f"ride-{ride + 1}")


async def categories(st: Stage, cast: Cast) -> None:
    """Registry categories: veterans and disabled ride free at any hour; a lapsed
    `until` no longer counts."""
    bus, _ = pick_bus_pair(st)
    gate = pick_spot_gates(st)[0]
    for name in ("veteran", "veteran65", "disabled3", "disabled_lapsed"):
        holder = getattr(cast, name)
        for terminal in (bus, gate):
            await st.scan(terminal, holder, "ecard", step=f"{name}-{terminal.spec.kind}")


async def companions(st: Stage, cast: Cast) -> None:
    """One companion per primary, same terminal, disabled grade 1–2 only."""
    bus_a, bus_b = pick_bus_pair(st)
    h = cast.disabled2
    await st.scan(bus_a, h, step="primary")
    await st.scan(bus_a, h, "ecard", step="companion", companion=True)
    await st.scan(bus_a, h, step="second-companion", companion=True)
    await st.scan(bus_a, h, step="primary-2")
    await st.scan(bus_b, h, step="companion-other-bus", companion=True)
    for name in ("disabled3", "adult"):
        holder = getattr(cast, name)
        await st.scan(bus_a, holder, step=f"{name}-primary")
        await st.scan(bus_a, holder, step=f"{name}-companion", companion=True)
    gate = pick_spot_gates(st)[0]
    d1 = cast.disabled1
    await st.scan(gate, d1, step="spot-primary")
    await st.scan(gate, d1, "ecard", step="spot-companion", companion=True)


async def second_entry(st: Stage, cast: Cast) -> None:
    """A free or half entry once a day per spot; full price as often as one likes."""
    gates = pick_spot_gates(st)
    for name in ("adult_card", "senior60", "visitor"):
        holder = getattr(cast, name)
        for n, gate in enumerate((gates[0], gates[-1], gates[0])):
            await st.scan(gate, holder, step=f"{name}-entry-{n + 1}")


async def idempotency(st: Stage, cast: Cast) -> None:
    """A retry of the same body gets the same bytes back; another body under the same
    request_id is a 409; the retried ride is counted once."""
    bus, _ = pick_bus_pair(st)
    h = cast.senior70
    at = st.now()
    body = bus.body(credential_of(bus, h, at), at)
    expected = st.oracle.expect(h, bus.spec, at)
    first = await bus.send(body)
    st.oracle.observe(h, bus.spec, at, companion=False, status=first.status, body=first.body)
    st.record("first", bus.id, body, expected, first)
    again = await bus.send(body)
    if again.raw != first.raw:
        st.fail("retry", f"retry answered differently: {again.status} {again.raw[:200]!r}")
    else:
        st.passed("retry")
    request_id = SimTerminal.request_of(body)["request_id"]
    at = st.now()
    other = bus.body(credential_of(bus, h, at), at, request_id=request_id)
    await st.send_raw(bus.client, other, step="conflict",
                      expect=Expected.http(409, "request_id_conflict"))


async def concurrent_scans(st: Stage, cast: Cast) -> None:
    """One QR shown at two readers at the same instant is accepted at most once."""
    bus_a, bus_b = pick_bus_pair(st)
    h = cast.adult
    at = st.now()
    qr = bus_a.qr_credential(h.phone.qr(int(at)))
    replies = await asyncio.gather(bus_a.send(bus_a.body(qr, at)), bus_b.send(bus_b.body(qr, at)))
    accepted = sum(r.body.get("decision") == "accept" for r in replies)
    reasons = sorted(str(r.body.get("reason")) for r in replies)
    if accepted != 1 or reasons != ["ok", "replayed"]:
        st.fail("race", f"expected one accept and one replayed, got {reasons}")
    else:
        st.passed("race")
    for r in replies:
        st.oracle.observe(h, bus_a.spec, at, companion=False, status=r.status, body=r.body)


NORMAL: tuple[Scenario, ...] = (
    Scenario("normal_traffic", normal_traffic),
    Scenario("seniors", seniors),
    Scenario("daily_cap", daily_cap),
    Scenario("categories", categories, needs_registry=True),
    Scenario("companions", companions, needs_registry=True),
    Scenario("second_entry", second_entry),
    Scenario("idempotency", idempotency),
    Scenario("concurrent_scans", concurrent_scans),
)
