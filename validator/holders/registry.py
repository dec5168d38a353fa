"""The eligibility registry's input format: categories, and NDJSON imports of any size.

Shared by the command line (`holders load`) and the operator API (`holders:import`).
An SSN is turned into its `holder_ref` on arrival and dropped; it is never stored,
logged or echoed back, not even in an error message.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from validator.holders.ref import holder_ref, is_holder_ref
from validator.holders.ssn import InvalidSsn, parse_ssn
from validator.policy.types import Category
from validator.state.store import RegistryStore

CATEGORY_CODES = ("veteran", "disabled")
BATCH_SIZE = 1000


class InvalidHolder(ValueError):
    """A registry entry that cannot be applied; the message is safe to show."""


@dataclass(slots=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, error)
    blank: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated,
                "rejected": [{"line": n, "error": e} for n, e in self.rejected]}


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: object, where: str) -> dt.date:
    """Exactly YYYY-MM-DD (fromisoformat alone would also take "2026-W49-3")."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidHolder(f"{where}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidHolder(f"{where}: {value!r} is not a real date") from None


def parse_holder_ref(value: object) -> str:
    """A `holder_ref` as the operator API and the command line take it."""
    if not isinstance(value, str) or not is_holder_ref(value):
        raise InvalidHolder("holder_ref: expected 32 lowercase hex characters")
    return value


def parse_categories(value: object) -> tuple[Category, ...]:
    """Registry categories from JSON: [{"code", "grade"?, "until"?}, ...]."""
    if not isinstance(value, list):
        raise InvalidHolder("categories: expected a list")
    out = []
    for i, item in enumerate(value):
        where = f"categories[{i}]"
        if not isinstance(item, dict):
            raise InvalidHolder(f"{where}: expected an object")
        unknown = set(item) - {"code", "grade", "until"}
        if unknown:
            raise InvalidHolder(f"{where}: unknown field(s) {sorted(unknown)}")
        code = item.get("code")
        if code not in CATEGORY_CODES:
            raise InvalidHolder(f"{where}.code: expected one of {CATEGORY_CODES}")
        grade = item.get("grade")
        if code == "disabled":
            if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 4:
                raise InvalidHolder(f"{where}.grade: disabled needs a grade 1-4")
        elif grade is not None:
            raise InvalidHolder(f"{where}.grade: only disabled has a grade")
        until = item.get("until")
        out.append(Category(code=code, grade=grade,
                            until=None if until is None else parse_date(until, f"{where}.until")))
    return tuple(out)


def category_json(cat: Category) -> dict[str, Any]:
    out: dict[str, Any] = {"code": cat.code}
    if cat.grade is not None:
        out["grade"] = cat.grade
    if cat.until is not None:
        out["until"] = cat.until.isoformat()
    return out


def parse_holder_line(
    line: bytes, pepper: bytes, today: dt.date
) -> tuple[str, tuple[Category, ...]]:
    """One NDJSON line: exactly one of `holder_ref` / `ssn`, and `categories`."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise InvalidHolder("not a JSON object") from None
    if not isinstance(doc, dict):
        raise InvalidHolder("not a JSON object")
    has_ref, has_ssn = "holder_ref" in doc, "ssn" in doc
    if has_ref == has_ssn:
        raise InvalidHolder("exactly one of holder_ref and ssn is required")
    if "categories" not in doc:
        raise InvalidHolder("categories: required")
    categories = parse_categories(doc["categories"])
    if has_ref:
        return parse_holder_ref(doc["holder_ref"]), categories
    ssn = doc["ssn"]
    try:
        parse_ssn(ssn if isinstance(ssn, str) else "", today)
    except InvalidSsn as exc:
        raise InvalidHolder(f"ssn: {exc}") from None
    return holder_ref(pepper, ssn), categories


async def import_ndjson(
    lines: AsyncIterable[bytes], store: RegistryStore, pepper: bytes, today: dt.date,
    *, batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Apply every good line, in batches (bounded memory for registries of any size)."""
    report = ImportReport()
    batch: list[tuple[str, tuple[Category, ...]]] = []
    number = 0
    async for raw in lines:
        number += 1
        if not raw.strip():
            report.blank += 1
            continue
        try:
            batch.append(parse_holder_line(raw, pepper, today))
        except InvalidHolder as exc:
            report.rejected.append((number, str(exc)))
        if len(batch) >= batch_size:
            await _flush(batch, store, report)
    await _flush(batch, store, report)
    return report


async def _flush(
    batch: list[tuple[str, tuple[Category, ...]]], store: RegistryStore, report: ImportReport
) -> None:
    if not batch:
        return
    for created in await store.put_holders(batch):
        if created:
            report.created += 1
        else:
            report.updated += 1
    batch.clear()
