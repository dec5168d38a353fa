"""The bundle's payload: a CBOR map, signed (signing.py) and gzip-compressed on the wire.

The fixed part — trust list, policy, calendar days, venues, terminals, limits — is in
every bundle, full or delta: it is a few kilobytes, and a terminal then never holds a
policy older than its lists. The lists (content.py) are whole in a full bundle and only
what changed in a delta. docs/protocol.md, "Offline terminals", is the reference.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import zoneinfo
from collections.abc import Iterable, Iterator
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from validator.config_folder import Config
from validator.offline import signing
from validator.offline.config import OfflineConfig
from validator.offline.content import SECTIONS, Item, Lists
from validator.offline.eligibility import date_int

__all__ = ["FORMAT_VERSION", "Fixed", "encode", "fixed_part"]

FORMAT_VERSION = 1
Fixed = dict[str, Any]


def fixed_part(config: Config, offline: OfflineConfig, trust_jwks: list[dict[str, Any]],
               now: float) -> Fixed:
    """Everything but the lists and the header, for a bundle issued at `now`."""
    city, engine = config.city, config.engine
    tz = zoneinfo.ZoneInfo(city.time_zone)
    local = dt.datetime.fromtimestamp(now, tz)
    offset = local.utcoffset()
    days = []
    last = dt.datetime.fromtimestamp(now + offline.max_offline_age_s, tz).date()
    day = local.date()
    while day <= max(last, local.date() + dt.timedelta(days=offline.calendar_days - 1)):
        days.append([date_int(day), engine.calendar.is_working_day(day),
                     engine.calendar.is_holiday(day)])
        day += dt.timedelta(days=1)
    venues: dict[str, Any] = {}
    for info in engine.venues:
        facts: dict[str, Any] = {"operator": info.operator, "standard_fen": info.standard_fen}
        if info.capacity_per_day is not None:
            facts["capacity"] = info.capacity_per_day
        if info.opens is not None and info.closes is not None:
            facts["opens"] = info.opens.strftime("%H:%M:%S")
            facts["closes"] = info.closes.strftime("%H:%M:%S")
        venues[info.venue] = facts
    return {
        "tz": city.time_zone,
        "utc_offset_s": int(offset.total_seconds()) if offset is not None else 0,
        "resident_prefixes": list(city.resident_region_prefixes),
        "trust": trust_jwks,
        "policy": config.policy.model_dump(mode="json", by_alias=True),
        "days": days,
        "venues": venues,
        "terminals": {t.id: t.venue for t in config.terminals.values() if t.enabled},
        "card_allowance": offline.card_allowance,
    }


def encode(key: Ed25519PrivateKey, *, seq: int, iat: int, exp: int, salt: bytes,
           fixed: Fixed, lists: Lists, removed: set[Item] | None = None,
           base: int | None = None) -> bytes:
    """gzip(COSE_Sign1(payload)): a full bundle, or with `base` a delta since it."""
    payload: dict[str, Any] = {"v": FORMAT_VERSION, "seq": seq, "iat": iat, "exp": exp,
                               "salt": salt, **fixed}
    if base is not None:
        payload["base"] = base
        payload["removed"] = {section: [] for section in SECTIONS}
        for section, index in sorted(removed or ()):
            payload["removed"][section].append(index)
    # The lists are CBOR written by hand: 110,000 `[index, value]` lists built for
    # cbor2 lived long enough to set off the interpreter's full collections, which
    # stop every thread, the event loop's included, for ~0.2 s.
    encoded = [cbor2.dumps(name) + cbor2.dumps(value) for name, value in payload.items()]
    encoded += [cbor2.dumps(name) + body for name, body in _encode_lists(lists).items()]
    signed = signing.sign1(key, _head(5, len(encoded)) + b"".join(encoded))
    return gzip.compress(signed, compresslevel=6, mtime=0)


def _encode_lists(lists: Lists) -> dict[str, bytes]:
    """Each section as the CBOR array of its `[index, value]` pairs, in index order."""
    bodies = {section: bytearray() for section in SECTIONS}
    counts = dict.fromkeys(SECTIONS, 0)
    for (section, index), value in _in_order(lists.items()):
        body = bodies[section]
        body += b"\x82" + _head(2, len(index)) + index
        if isinstance(value, bytes):
            body += _head(2, len(value)) + value
        else:
            body += _head(0, value)
        counts[section] += 1
    return {section: _head(4, counts[section]) + bodies[section] for section in SECTIONS}


def _head(major: int, n: int) -> bytes:
    """A CBOR item's head: major type and argument (RFC 8949 §3), shortest form."""
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(f"{n} does not fit a CBOR head")


SORT_RUN = 4096


def _in_order(items: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """`sorted(items)` in short runs merged lazily. The service encodes in a worker
    thread, and one `sorted` of 110,000 entries is a single C call that holds the GIL
    (and so the event loop) for ~0.1 s; runs of a few thousand hold it ~1 ms each."""
    runs: list[list[tuple[Any, Any]]] = []
    run: list[tuple[Any, Any]] = []
    for item in items:
        run.append(item)
        if len(run) == SORT_RUN:
            runs.append(sorted(run))
            run = []
    runs.append(sorted(run))
    return heapq.merge(*runs)
