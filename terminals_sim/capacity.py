"""Capacity reached: fill the smallest spot, then everyone is turned away.

The spot with the smallest daily capacity (S12, 2000, in the default city; a scenario
config dir may make it tiny) is filled by visitors paying full price — a full-price
entry is always allowed, so a handful of visitors can fill any spot. With an operator
token, the settlement report says how many entries the spot already had today, and the
number of accepts must be exactly the room left; without it, the run checks that the
spot stops at or before its capacity. The capacity check precedes every category, so
afterwards a veteran, a senior and a resident are all refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from terminals_sim.cast import Cast
from terminals_sim.checks import Scenario, Stage, capacity_spot
from terminals_sim.expect import Expected

__all__ = ["CAPACITY"]

MAX_FILL = 50_000  # a spot bigger than this is not filled by a scenario
CONCURRENCY = 16
CHUNK = 500  # QR codes are built just before use (a QR lives 60 s)


async def settlement_entries(st: Stage, spot_id: str, day: dt.date) -> int | None:
    """Accepted entries at the spot today from `GET /v1/settlement`, or None."""
    if not st.admin_token:
        return None
    spot = st.city.spots[spot_id]
    url = f"{st.base_url.rstrip('/')}/v1/settlement"
    params = {"date": day.isoformat(), "operator": spot.operator}
    async with st.session.get(url, params=params,
                              headers={"Authorization": f"Bearer {st.admin_token}"}) as resp:
        if resp.status != 200:
            st.report.notes.append(f"capacity: settlement answered {resp.status}: "
                                   "capacity checked without a baseline")
            return None
        doc: dict[str, Any] = await resp.json()
    return sum(int(row["count"]) for row in doc.get("rows", [])
               if row.get("venue") == f"spot:{spot_id}")


async def capacity(st: Stage, cast: Cast) -> None:
    spot_id = capacity_spot(st)
    spot = st.city.spots[spot_id]
    gates = st.fleet.at_venue(f"spot:{spot_id}")
    local = st.city.local(st.now())
    closing = dt.datetime.combine(local.date(), spot.closes, local.tzinfo)
    if not spot.is_open(local) or (closing - local).total_seconds() < 120:
        st.report.notes.append(f"capacity: {spot_id} is closed (or closing) at {local:%H:%M}: "
                               "checked venue_closed only")
        for holder in (cast.fillers[0], cast.veteran):
            await st.scan(gates[0], holder, "ecard", step="closed")
        return
    baseline = await settlement_entries(st, spot_id, local.date())
    if baseline is not None:
        st.oracle.set_baseline(spot_id, local.date(), baseline)
    room = max(spot.capacity_per_day - (baseline or 0), 0)
    if room > MAX_FILL:
        st.report.notes.append(f"capacity: {spot_id} has room for {room}: not filled")
        return
    accepted, full = await _fill(st, cast, gates, room + 3)
    if baseline is not None and accepted != room:
        st.fail("fill", f"{accepted} accepts with room for {room} (baseline {baseline})")
    elif accepted > spot.capacity_per_day or not full:
        st.fail("fill", f"{accepted} accepts, {full} capacity_reached; capacity "
                f"{spot.capacity_per_day}")
    else:
        st.passed("fill")
    st.report.notes.append(f"capacity: {spot_id} filled with {accepted} accepts "
                           f"(baseline {baseline if baseline is not None else 'unknown'})")
    for name in ("veteran", "senior70", "adult", "visitor_senior60"):
        holder = getattr(cast, name)
        await st.scan(gates[-1], holder, "ecard", step=f"after-full-{name}",
                      expect=Expected.deny("capacity_reached"))


async def _fill(st: Stage, cast: Cast, gates: list[Any], count: int) -> tuple[int, int]:
    """Send `count` full-price entries, CONCURRENCY at a time; (accepts, capacity denies)."""
    spot = st.city.spots[gates[0].spec.venue_id]
    standard = Expected.accept("spot.standard", "full", spot.ticket_fen, spot.ticket_fen)
    full = Expected.deny("capacity_reached")
    tally = {"accept": 0, "full": 0}
    gate_lock = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int, qr: str) -> None:
        holder, gate = cast.fillers[i % len(cast.fillers)], gates[i % len(gates)]
        async with gate_lock:
            reply = await st.present(gate, gate.qr_credential(qr), step=f"fill-{i}",
                                     holder=holder, expect=[standard, full])
        tally["accept"] += reply.body.get("decision") == "accept"
        tally["full"] += reply.body.get("reason") == "capacity_reached"

    for start in range(0, count, CHUNK):
        now = int(st.now())
        batch = [(i, cast.fillers[i % len(cast.fillers)].phone.qr(now))
                 for i in range(start, min(start + CHUNK, count))]
        await asyncio.gather(*(one(i, qr) for i, qr in batch))
        if tally["full"] >= 3:  # the spot is full: more entries would prove nothing new
            break
    return tally["accept"], tally["full"]


CAPACITY: tuple[Scenario, ...] = (Scenario("capacity", capacity),)
