"""The audit log: who changed the eligibility registry or a block list, when, and how.

Every change made through the operator API or the command line appends one entry,
newest read first (`GET /v1/admin/audit`). An entry names the actor (an operator
token's *name* and role, never the token; `cli` for the command line), the time, the
action, its target (a `holder_ref` or a card number — never an SSN) and the value
before and after, as the API shows them.

The store has no transaction spanning a change and its audit entry, so the entry is
appended right after the change succeeds: a store outage between the two loses the
entry, never a change that was not made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from validator.state.store import AuditLog

__all__ = ["CLI", "MAX_READ", "Actor", "append", "read"]

MAX_READ = 1000  # entries per read; the log itself is append-only and unbounded


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an operator token's name and role, or the command line."""

    name: str
    role: str  # "admin" | "viewer" | "cli"


CLI = Actor("cli", "cli")


async def append(
    store: AuditLog,
    actor: Actor,
    action: str,
    target: str,
    old: Any,
    new: Any,
    now: float,
) -> str:
    """Append one entry; answers its id. `old`/`new` are JSON values (None = absent)."""
    entry = {
        "at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z"),
        "who": actor.name,
        "role": actor.role,
        "action": action,
        "target": target,
        "old": old,
        "new": new,
    }
    return await store.audit_append(orjson.dumps(entry))


async def read(store: AuditLog, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` entries (at most MAX_READ), newest first, each with its `id`."""
    entries = []
    for entry_id, raw in await store.audit_read(min(limit, MAX_READ)):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        # An entry this code did not write is shown as such rather than hidden.
        entries.append({"id": entry_id, **doc} if isinstance(doc, dict)
                       else {"id": entry_id, "unreadable": True})
    return entries
