"""How the Redis store writes its values, and reads them back.

Exact (floats by repr, so an equality guard compares exactly), compact (absent fields
left out), and free of anything personal: categories, blocks and ledger entries hold
codes, dates and pseudonyms only. Decoding raises ValueError on garbage; the store
translates that into StoreUnavailable at its boundary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from validator.policy.types import Category
from validator.state.store import Block, Snapshot, StoredResponse

# --- encoding: exact, compact, and free of anything personal ---------------------------


def opt(value: int | None) -> str:
    return "" if value is None else str(value)


def exact(value: float | None) -> str:
    # repr of a float round-trips exactly; float() first so that 1.0 and 1 store alike.
    return "" if value is None else repr(float(value))


def _compact(**fields: object) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


def encode_categories(categories: tuple[Category, ...]) -> bytes:
    # orjson writes a date as "YYYY-MM-DD".
    return orjson.dumps([_compact(code=c.code, grade=c.grade, until=c.until) for c in categories])


def encode_block(block: Block) -> bytes:
    return orjson.dumps(_compact(reason=block.reason, until=block.until))


# --- decoding (inside a boundary: a ValueError here means garbage in Redis) ----------


def decode_snapshot(raw: dict[str, Any]) -> Snapshot:
    """MGET values by SnapshotKeys field name → the Snapshot (absent: the empty default)."""
    get = raw.get
    stored, atc, rides, entries = get("stored"), get("atc"), get("rides"), get("capacity")
    holder, companion = get("holder"), get("companion")
    return Snapshot(
        stored=None if stored is None else decode_stored(stored),
        nonce_seen=get("nonce") is not None,
        atc_high=None if atc is None else int(atc),
        card_block=decode_block(get("card_block")),
        holder_block=decode_block(get("holder_block")),
        categories=() if holder is None else decode_categories(holder),
        concession_rides_today=0 if rides is None else int(rides),
        entered_today=get("entered") is not None,
        spot_entries_today=0 if entries is None else int(entries),
        companion_opened_at=None if companion is None else float(companion),
    )


def decode_stored(raw: bytes) -> StoredResponse:
    body_sha256, separator, response = raw.partition(b"\n")
    if not separator:
        raise ValueError("idempotency record without separator")
    return StoredResponse(body_sha256.decode("ascii"), response)


def _day(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def decode_categories(raw: bytes | str) -> tuple[Category, ...]:
    return tuple(
        Category(code=str(r["code"]), grade=r.get("grade"), until=_day(r.get("until")))
        for r in orjson.loads(raw)
    )


def decode_block(raw: bytes | str | None) -> Block | None:
    if raw is None:
        return None
    record = orjson.loads(raw)
    return Block(reason=record.get("reason"), until=_day(record.get("until")))


def decode_raw_entries(raw: list[list[Any]] | None) -> list[tuple[str, bytes]]:
    """XRANGE answers as RESP arrays ([id, [field, value, …]]) → (id, field "r")."""
    out = []
    for entry_id, fields in raw or ():
        if len(fields) == 2 and fields[0] == b"r":  # what the commit script writes
            out.append((entry_id.decode(), fields[1]))
            continue
        named = dict(zip(fields[::2], fields[1::2], strict=False))
        if b"r" not in named:
            raise ValueError(f"ledger entry {entry_id!r} has no field r")
        out.append((entry_id.decode(), named[b"r"]))
    return out


def decode_entries(raw: list[tuple[Any, Any]] | None) -> list[tuple[str, bytes]]:
    """XRANGE answers → (entry id, the record stored in field "r")."""
    return [(entry_id.decode(), fields[b"r"]) for entry_id, fields in raw or ()]
