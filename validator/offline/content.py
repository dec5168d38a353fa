"""A bundle's lists, read from the store: blocked cards, blocked holders, eligibility.

`read_lists` reads every block and registry entry a page at a time and keys each by its
salted index (eligibility.py), so nothing in the result names a card or a holder.
`Lists` is keyed by (section, index); `History` remembers, per item, the generation at
which this process saw it change, which is all a `since=` delta needs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from validator.offline import eligibility
from validator.policy.types import Category
from validator.state.store import Block, BlockKind

__all__ = ["SECTIONS", "History", "Lists", "Sealer", "read_lists"]

SECTIONS = ("blocked_cards", "blocked_holders", "eligibility")
PAGE = 2000

Item = tuple[str, bytes]  # (section, index)
Lists = dict[Item, bytes | int]  # eligibility: ciphertext; blocks: until (YYYYMMDD, 0)

BlockPage = Callable[[BlockKind, str | None, int], Awaitable[list[tuple[str, Block]]]]
HolderPage = Callable[[str | None, int], Awaitable[list[tuple[str, tuple[Category, ...]]]]]


class Sealer:
    """Seals holders' entries under one salt, remembering the unchanged ones: a refresh
    re-derives keys only for holders whose categories changed."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt
        self._sealed: dict[str, tuple[tuple[Category, ...], bytes, bytes]] = {}

    def seal(self, holder_ref: str, categories: tuple[Category, ...]) -> tuple[bytes, bytes]:
        known = self._sealed.get(holder_ref)
        if known is not None and known[0] == categories:
            return known[1], known[2]
        index, sealed = eligibility.seal(bytes.fromhex(holder_ref), self.salt, categories)
        self._sealed[holder_ref] = (categories, index, sealed)
        return index, sealed


async def read_lists(blocks: BlockPage, holders: HolderPage, sealer: Sealer,
                     today: dt.date) -> Lists:
    """Every active block and registry entry, keyed by salted index. Categories and
    blocks that ended before `today` are left out (a terminal never needs them).

    A page per store call; each page is indexed in a worker thread, so the event loop
    answers gates meanwhile, and a page's objects die young instead of piling up until
    the interpreter's full collections (which stop every thread) grow long."""
    lists: Lists = {}
    kinds: tuple[tuple[BlockKind, Callable[..., None]], ...] = (
        ("card", _card_entries), ("holder", _hold_entries))
    for kind, index_page in kinds:
        after: str | None = None
        while page := await blocks(kind, after, PAGE):
            await asyncio.to_thread(index_page, page, sealer.salt, today, lists)
            after = page[-1][0]
    after = None
    while records := await holders(after, PAGE):
        await asyncio.to_thread(_eligibility_entries, records, sealer, today, lists)
        after = records[-1][0]
    return lists


def _card_entries(page: list[tuple[str, Block]], salt: bytes, today: dt.date,
                  lists: Lists) -> None:
    for card_no, block in page:
        if block.active_on(today):
            until = eligibility.date_int(block.until)
            lists[("blocked_cards", eligibility.card_index(card_no, salt))] = until


def _hold_entries(page: list[tuple[str, Block]], salt: bytes, today: dt.date,
                  lists: Lists) -> None:
    for ref, block in page:
        if block.active_on(today):
            index = eligibility.hold_index(bytes.fromhex(ref), salt)
            lists[("blocked_holders", index)] = eligibility.date_int(block.until)


def _eligibility_entries(records: list[tuple[str, tuple[Category, ...]]], sealer: Sealer,
                         today: dt.date, lists: Lists) -> None:
    for ref, categories in records:
        active = tuple(c for c in categories if c.active_on(today))
        if active:
            index, sealed = sealer.seal(ref, active)
            lists[("eligibility", index)] = sealed


@dataclass
class History:
    """What changed when, for one salt epoch, as this process saw it.

    `changed[item]` is the sequence number of the generation that first showed the
    item's current value (or its removal, for items in `removed`). A delta since S is
    every item changed after S; correct because S's lists were read after S began and
    any later change is seen by a later generation. Removals are kept for the epoch.
    """

    first_seq: int
    seq: int
    lists: Lists = field(default_factory=dict)
    changed: dict[Item, int] = field(default_factory=dict)
    removed: set[Item] = field(default_factory=set)

    def advance(self, seq: int, lists: Lists) -> None:
        for item, value in lists.items():
            if self.lists.get(item) != value:
                self.changed[item] = seq
                self.removed.discard(item)
        for item in self.lists.keys() - lists.keys():
            self.changed[item] = seq
            self.removed.add(item)
        self.lists, self.seq = lists, seq

    def covers(self, since: int) -> bool:
        """Whether a delta since `since` can be answered (else: a full bundle)."""
        return self.first_seq <= since <= self.seq

    def delta(self, since: int) -> tuple[Lists, set[Item]]:
        """(items to upsert, items removed) after `since`."""
        upserts = {item: value for item, value in self.lists.items()
                   if self.changed.get(item, self.first_seq) > since}
        gone = {item for item in self.removed if self.changed[item] > since}
        return upserts, gone
