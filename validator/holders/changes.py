"""Audited changes to the eligibility registry and the block lists.

The operator API and the command line both change holder status through these
functions, so that every change leaves the same audit entry (`validator.audit`)
whoever made it. A change reaches the store at once and the decision pipeline reads
status afresh for every scan, so a block applies from the very next scan.

Their input is checked here too (`parse_block_id`, `parse_block`, the NDJSON of
`import_holders`): the API and the command line refuse the same input with the same
message, since there is one validator, not two.

The audit log shows values as the API does: categories as `[{"code", "grade"?,
"until"?}]`, a block as `{"reason", "until"}`; `null` stands for "none".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterable
from typing import Any

from validator import audit
from validator.audit import Actor
from validator.holders import ndjson
from validator.holders.registry import (
    ImportReport,
    InvalidHolder,
    category_json,
    import_ndjson,
    parse_date,
    parse_holder_ref,
)
from validator.policy.types import Category
from validator.state.store import Block, BlockKind, OperatorStore

__all__ = [
    "MAX_REASON_CHARS",
    "block_json",
    "categories_json",
    "delete_block",
    "delete_holder",
    "import_holders",
    "is_card_no",
    "parse_block",
    "parse_block_id",
    "put_block",
    "put_holder",
]

MAX_REASON_CHARS = 200
_CARD_NO = re.compile(r"[A-Z0-9]{9}")  # protocol §3


def is_card_no(value: str) -> bool:
    return _CARD_NO.fullmatch(value) is not None


def parse_block_id(kind: BlockKind, ident: str) -> str:
    """A card number (protocol §3) or a holder_ref, as a block list names its entries."""
    if kind == "holder":
        return parse_holder_ref(ident)
    if not is_card_no(ident):
        raise InvalidHolder("card_no: expected 9 characters of [A-Z0-9]")
    return ident


def categories_json(categories: tuple[Category, ...]) -> list[dict[str, Any]]:
    return [category_json(c) for c in categories]


def block_json(block: Block) -> dict[str, Any]:
    return {"reason": block.reason,
            "until": None if block.until is None else block.until.isoformat()}


def parse_block(doc: object, today: dt.date) -> Block:
    """A block body `{"reason"?, "until"?}`; raises `InvalidHolder` naming the field.

    An `until` before `today` is refused: such a block would never apply, which is
    almost certainly a typo in the year.
    """
    if not isinstance(doc, dict):
        raise InvalidHolder("body: expected a JSON object")
    unknown = set(doc) - {"reason", "until"}
    if unknown:
        raise InvalidHolder(f"unknown field(s) {sorted(unknown)}")
    reason = doc.get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()
                               or len(reason) > MAX_REASON_CHARS):
        raise InvalidHolder(f"reason: expected a non-empty string of at most "
                            f"{MAX_REASON_CHARS} characters")
    raw_until = doc.get("until")
    until = None
    if raw_until is not None:
        until = parse_date(raw_until, "until")
    if until is not None and until < today:
        raise InvalidHolder(f"until: {until.isoformat()} is before today "
                            f"({today.isoformat()}); the block would never apply")
    return Block(reason=reason, until=until)


# --- the eligibility registry -------------------------------------------------------


async def put_holder(
    store: OperatorStore, actor: Actor, holder_ref: str, categories: tuple[Category, ...],
    now: float,
) -> bool:
    """Create or replace a holder's categories; answers True if the holder was new."""
    old = await store.get_holder(holder_ref)
    (created,) = await store.put_holders([(holder_ref, categories)])
    await audit.append(store, actor, "holder.put", holder_ref,
                       None if old is None else categories_json(old),
                       categories_json(categories), now)
    return created


async def delete_holder(
    store: OperatorStore, actor: Actor, holder_ref: str, now: float
) -> bool:
    """Remove a holder from the registry; answers False if it was not there."""
    old = await store.get_holder(holder_ref)
    if old is None or not await store.delete_holder(holder_ref):
        return False
    await audit.append(store, actor, "holder.delete", holder_ref, categories_json(old), None,
                       now)
    return True


async def import_holders(
    store: OperatorStore, actor: Actor, chunks: AsyncIterable[bytes], pepper: bytes,
    today: dt.date,
    now: float,
) -> ImportReport:
    """Apply an NDJSON import (`registry.import_ndjson`) and audit it as one entry.

    `chunks` is the raw NDJSON, cut anywhere (`ndjson.lines` splits it, in bounded
    memory); a line longer than `ndjson.MAX_LINE_BYTES` is rejected as such.

    A bulk import is one operator action over up to hundreds of thousands of holders:
    its entry records the counts, not every holder's old and new value, which would
    copy the whole registry into the log at every periodic sync.
    """
    too_long: set[int] = set()
    report = await import_ndjson(ndjson.lines(chunks, too_long), store, pepper, today)
    report.rejected = [(n, ndjson.TOO_LONG if n in too_long else error)
                       for n, error in report.rejected]
    await audit.append(store, actor, "holder.import", "holders", None, {
        "created": report.created, "updated": report.updated,
        "rejected": len(report.rejected), "blank": report.blank,
    }, now)
    return report


# --- block lists --------------------------------------------------------------------


async def put_block(
    store: OperatorStore, actor: Actor, kind: BlockKind, ident: str, block: Block, now: float
) -> Block | None:
    """Set a card or holder block; answers the block it replaced, if any."""
    old = await store.put_block(kind, ident, block)
    await audit.append(store, actor, f"{kind}_block.put", ident,
                       None if old is None else block_json(old), block_json(block), now)
    return old


async def delete_block(
    store: OperatorStore, actor: Actor, kind: BlockKind, ident: str, now: float
) -> Block | None:
    """Lift a block; answers the removed block, or None if there was none (no entry)."""
    old = await store.delete_block(kind, ident)
    if old is not None:
        await audit.append(store, actor, f"{kind}_block.delete", ident, block_json(old), None,
                           now)
    return old
