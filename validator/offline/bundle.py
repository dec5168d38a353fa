"""The bundle's payload: a CBOR map, signed (signing.py) and gzip-compressed on the wire.

The fixed part — trust list, policy, calendar days, venues, terminals, limits — is in
every bundle, full or delta: it is a few kilobytes, and a terminal then never holds a
policy older than its lists. The lists (content.py) are whole in a full bundle and only
what changed in a delta. docs/protocol.md, "Offline terminals", is the reference.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zoneinfo
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from validator.config import Config
from validator.offline import signing
from validator.offline.config import OfflineConfig
from validator.offline.content import SECTIONS, Item, Lists

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
        days.append([_ymd(day), engine.calendar.is_working_day(day),
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
    for section in SECTIONS:
        payload[section] = []
    for (section, index), value in sorted(lists.items()):
        payload[section].append([index, value])
    if base is not None:
        payload["base"] = base
        payload["removed"] = {section: [] for section in SECTIONS}
        for section, index in sorted(removed or ()):
            payload["removed"][section].append(index)
    signed = signing.sign1(key, cbor2.dumps(payload))
    return gzip.compress(signed, compresslevel=6, mtime=0)


def _ymd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day
