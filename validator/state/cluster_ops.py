"""The operator-side roles of the cluster store: registry, blocks, ledger, audit, feed.

None of these is on the decision path, so each is written for clarity: a record and its
index entry live in different slots and are written one after the other, in the order
that makes a crash between them harmless (an index entry whose record is gone is
skipped by the listings). A day's ledger is `slots.GROUPS` streams: `ledger_read` reads
each from the cursor on and merges them in the order of their merged ids (`cluster.py`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from itertools import groupby
from typing import Any

from redis.exceptions import RedisError

from validator.policy.types import Category
from validator.state import codec, keys, slots
from validator.state.cluster import ClusterBase
from validator.state.script import LEASE, PUT_HOLDERS, RELEASE
from validator.state.slots import merged_id, split_id
from validator.state.store import FEED_ERRORS_KEPT, Block, BlockKind, StoreUnavailable

HOLDER_BATCH = 500  # records per script call, as on one Redis


class Operations(ClusterBase):
    # --- eligibility registry ---

    async def get_holder(self, holder_ref: str) -> tuple[Category, ...] | None:
        async with self._bounded():
            raw = await self._client.get(slots.holder(holder_ref))
            return None if raw is None else codec.decode_categories(raw)

    async def put_holders(self, records: list[tuple[str, tuple[Category, ...]]]) -> list[bool]:
        """Upsert a batch: one script per group (a script's keys share a slot); True where
        created, in the order of `records`."""
        created: dict[int, bool] = {}
        order = sorted(range(len(records)), key=lambda i: slots.group_of(records[i][0]))
        for _, grouped in groupby(order, key=lambda i: slots.group_of(records[i][0])):
            members = list(grouped)
            for start in range(0, len(members), HOLDER_BATCH):
                chunk = members[start:start + HOLDER_BATCH]
                async with self._bounded():
                    await self._client.zadd(slots.HOLDER_INDEX,
                                            {records[i][0]: 0 for i in chunk})
                answer = await self.eval_script(
                    PUT_HOLDERS, tuple(slots.holder(records[i][0]) for i in chunk),
                    tuple(codec.encode_categories(records[i][1]) for i in chunk))
                created.update((i, bool(int(flag))) for i, flag in zip(chunk, answer, strict=True))
        return [created[i] for i in range(len(records))]

    async def delete_holder(self, holder_ref: str) -> bool:
        async with self._bounded():
            deleted = await self._client.delete(slots.holder(holder_ref)) > 0
            await self._client.zrem(slots.HOLDER_INDEX, holder_ref)
            return deleted

    async def list_holders(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, tuple[Category, ...]]]:
        refs = await self._page(slots.HOLDER_INDEX, after, count)
        if not refs:
            return []
        async with self._bounded():
            raws = await self._client.mget_nonatomic([slots.holder(r) for r in refs])
            return [(r, codec.decode_categories(raw))
                    for r, raw in zip(refs, raws, strict=True) if raw is not None]

    async def _page(self, index: str, after: str | None, count: int) -> list[str]:
        if count <= 0:
            return []
        low = "-" if after is None else "(" + after
        async with self._bounded():
            return [i.decode() if isinstance(i, bytes) else i for i in
                    await self._client.zrangebylex(index, low, "+", 0, count)]

    # --- block lists ---

    async def get_block(self, kind: BlockKind, ident: str) -> Block | None:
        async with self._bounded():
            return codec.decode_block(await self._client.get(slots.block(kind, ident)))

    async def put_block(self, kind: BlockKind, ident: str, block: Block) -> Block | None:
        """A card's copies in every group first, then the index entry and the block
        itself, SET … GET (answers the previous block): a block that is listed denies
        in every slot, and one that failed half way is put again by the retry."""
        encoded = codec.encode_block(block)
        async with self._bounded():
            if kind == "card":
                await self._card_copies(ident, encoded)
            await self._client.zadd(slots.block_index(kind), {ident: 0})
            previous = await self._client.set(slots.block(kind, ident), encoded, get=True)
            return codec.decode_block(previous if isinstance(previous, bytes) else None)

    async def delete_block(self, kind: BlockKind, ident: str) -> Block | None:
        """The block, then a card's copies, then the index entry (a removal that failed
        half way still denies somewhere: the safe side, until it is retried)."""
        async with self._bounded():
            removed = await self._client.getdel(slots.block(kind, ident))
            if kind == "card":
                await self._card_copies(ident, None)
            await self._client.zrem(slots.block_index(kind), ident)
            return codec.decode_block(removed)

    async def _card_copies(self, card_no: str, encoded: bytes | None) -> None:
        """Set (or, with None, delete) a card's block in every group, a pipeline per node."""
        keys = [slots.card_block_copy(g, card_no) for g in range(slots.GROUPS)]
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            if encoded is None:
                pipe.delete(key)
            else:
                pipe.set(key, encoded)
        await pipe.execute()

    async def list_blocks(
        self, kind: BlockKind, after: str | None = None, count: int = 100
    ) -> list[tuple[str, Block]]:
        idents = await self._page(slots.block_index(kind), after, count)
        if not idents:
            return []
        async with self._bounded():
            raws = await self._client.mget_nonatomic([slots.block(kind, i) for i in idents])
            pairs = [(i, codec.decode_block(raw)) for i, raw in zip(idents, raws, strict=True)]
            return [(i, block) for i, block in pairs if block is not None]

    # --- the ledger: one stream per group and day, merged ---

    async def ledger_read(
        self, day: dt.date, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Records of `day` in merged-id order (time, then sequence, then group), after
        `after` (exclusive). Each group's stream is read from the cursor on, `count` at
        most, and the first `count` of their merge are the page."""
        if after is not None:
            keys.parse_entry_id(after)  # a malformed id is the caller's ValueError
        if count <= 0:
            return []
        ms, seq, last_group = split_id(after) if after is not None else (0, 0, -1)
        async with self._bounded():
            pipe = self._client.pipeline()
            for group in range(slots.GROUPS):
                start = "-" if after is None else (
                    f"{ms}-{seq}" if group > last_group else f"({ms}-{seq}")
                pipe.xrange(slots.ledger(group, day), start, "+", count)
            replies = await pipe.execute()
            merged = [(split_id(entry_id), entry_id, record)
                      for group, reply in enumerate(replies)
                      for entry_id, record in _records(reply, group)]
            merged.sort(key=lambda entry: entry[0])
            return [(entry_id, record) for _, entry_id, record in merged[:count]]

    # --- audit log ---

    async def audit_append(self, entry: bytes) -> str:
        async with self._bounded():
            return _text(await self._client.xadd(slots.AUDIT, {"r": entry}))

    async def audit_read(self, count: int = 100) -> list[tuple[str, bytes]]:
        if count <= 0:
            return []
        async with self._bounded():
            return codec.decode_entries(await self._client.xrevrange(slots.AUDIT, "+", "-", count))

    # --- the live feed's coordination ---

    async def feed_lease(self, holder: str, ttl_s: float) -> bool:
        return bool(int(await self.eval_script(LEASE, (slots.FEED_LEASE,),
                                               (holder, _ms(ttl_s)))))

    async def feed_release(self, holder: str) -> None:
        await self.eval_script(RELEASE, (slots.FEED_LEASE,), (holder,))

    async def feed_publish(self, board: bytes, ttl_s: float) -> None:
        async with self._bounded():
            await self._client.set(slots.FEED_BOARD, board, px=_ms(ttl_s))

    async def feed_board(self) -> bytes | None:
        async with self._bounded():
            raw = await self._client.get(slots.FEED_BOARD)
            if raw is not None and not isinstance(raw, bytes):
                raise TypeError("the published board is not a string")
            return raw

    async def feed_errors_add(self, entry: bytes) -> str:
        async with self._bounded():
            return _text(await self._client.xadd(slots.FEED_ERRORS, {"r": entry},
                                                 maxlen=FEED_ERRORS_KEPT, approximate=True))

    async def feed_errors_read(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        if after is not None:
            keys.parse_entry_id(after)
        if count <= 0:
            return []
        start = "-" if after is None else "(" + after
        async with self._bounded():
            return codec.decode_entries(
                await self._client.xrange(slots.FEED_ERRORS, start, "+", count))

    # --- lifecycle ---

    async def ping(self) -> None:
        """Ready means every slot has a primary: `cluster_state:ok` on a node."""
        async with self._bounded():
            info = await self._client.cluster_info()
            state = info.get("cluster_state") if isinstance(info, dict) else None
        if state != "ok":
            raise StoreUnavailable(f"redis cluster: cluster_state is {state!r}")

    async def close(self) -> None:
        await self._hot.close()
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def _records(reply: Any, group: int) -> list[tuple[str, bytes]]:
    return [(merged_id(_text(entry_id), group), fields[b"r"]) for entry_id, fields in reply]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
