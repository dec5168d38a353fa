"""A spot's daily capacity in a Redis Cluster: reservations, used or given back.

The capacity counter is shared by every holder, so it lives in the spot's own slot, apart
from the holder's slot where the decision is committed. A spot entry therefore takes
three steps: `reserve` (the counter counts the entry at once, and the reservation is
listed with a deadline), the holder's commit (which marks the reservation used, in the
holder's slot, atomically with the decision — and refuses it past its deadline), then
`settle` (a used reservation leaves the list; an unused one also gives its entry back).

A used reservation's settling changes no count — the entry was counted when it was
reserved — so it is not a command of its own: the store notes it (`UsedReservations`)
and the process's next reservation at that spot removes it from the list in the same
script. Until then it is listed like one whose validator died after its commit, and
settled the same way if the reconciler meets it first: as used, since its mark exists.
An unused reservation gives its entry back at once.

A validator that dies between the steps leaves its reservation listed. It is settled
later by `reconcile`, when the spot is next found full: a reservation past its deadline
(plus `CLOCK_MARGIN_MS` for the nodes' clocks) was used if and only if its mark exists,
since no commit can use it any more. So the counter never overshoots — an entry is
counted before it is committed — and nothing is counted twice; an orphaned reservation
holds a place for at most `RESERVATION_TTL_MS` + the margin, until the spot is full.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from validator.state import slots
from validator.state.script import Script

RESERVATION_TTL_MS = 10_000  # a commit uses its reservation within this, or conflicts
CLOCK_MARGIN_MS = 5_000  # how far apart two nodes' clocks may be
RECONCILE_BATCH = 100

RESERVE = Script.named("reserve.lua")
SETTLE = Script.named("settle.lua")


class Evaluator(Protocol):
    async def eval_script(self, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]
                          ) -> Any: ...

    async def exists(self, key: str) -> bool: ...


class UsedReservations:
    """Reservations a commit used, not yet removed from their spot's list: the next
    `reserve` at the same spot and day removes them. At most the commits answered since
    this process's last reservation there; those of an earlier day are dropped (the
    reconciler or the list's expiry settles them, as used)."""

    __slots__ = ("_day", "_pending")

    def __init__(self) -> None:
        self._day: dt.date | None = None
        self._pending: dict[str, list[str]] = {}  # spot id → members

    def add(self, spot_id: str, day: dt.date, token: str, holder_ref: str) -> None:
        if day != self._day:
            if self._day is not None and day < self._day:
                return  # a late commit of a past day: its list is no longer reconciled
            self._day, self._pending = day, {}
        self._pending.setdefault(spot_id, []).append(f"{token}:{holder_ref}")

    def take(self, spot_id: str, day: dt.date) -> list[str]:
        return self._pending.pop(spot_id, []) if day == self._day else []

    def put_back(self, spot_id: str, day: dt.date, members: list[str]) -> None:
        """A `take` whose script may not have run: removing a member twice is harmless."""
        if members and day == self._day:
            self._pending.setdefault(spot_id, []).extend(members)


async def reserve(
    ev: Evaluator, spot_id: str, day: dt.date, capacity: int, token: str, holder_ref: str,
    usage_ttl_s: int, *, ttl_ms: int = RESERVATION_TTL_MS, margin_ms: int = CLOCK_MARGIN_MS,
    used: UsedReservations | None = None,
) -> int | None:
    """Reserve one entry; answers the reservation's deadline (ms, the spot node's clock),
    or None if the spot is full even after reconciling its expired reservations. The
    used reservations noted in `used` for this spot leave its list in the same script."""
    spot_keys = (slots.capacity(spot_id, day), slots.reservations(spot_id, day))
    member = f"{token}:{holder_ref}"
    for _ in range(2):
        settled = used.take(spot_id, day) if used is not None else []
        try:
            ok, value = await ev.eval_script(RESERVE, spot_keys, (
                capacity, member, ttl_ms, margin_ms, usage_ttl_s, *settled))
        except BaseException:
            if used is not None:
                used.put_back(spot_id, day, settled)
            raise
        if int(ok) == 1:
            return int(value)
        expired = [m.decode() if isinstance(m, bytes) else str(m) for m in value]
        if not expired:
            return None
        await reconcile(ev, spot_id, day, expired)
    return None


async def settle(ev: Evaluator, spot_id: str, day: dt.date, token: str, holder_ref: str,
                 *, used: bool) -> None:
    """The holder's commit answered: the reservation leaves the list; unused, its entry
    is given back."""
    await ev.eval_script(SETTLE, (slots.capacity(spot_id, day), slots.reservations(spot_id, day)),
                         (f"{token}:{holder_ref}", 0 if used else 1))


async def reconcile(ev: Evaluator, spot_id: str, day: dt.date, expired: list[str]) -> None:
    """Settle reservations past their deadline: used if the holder's slot has the mark."""
    for member in expired[:RECONCILE_BATCH]:
        token, _, holder_ref = member.partition(":")
        used = await ev.exists(slots.reservation_mark(holder_ref, token))
        await settle(ev, spot_id, day, token, holder_ref, used=used)
