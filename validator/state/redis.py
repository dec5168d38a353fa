"""`RedisStore`: the production store on Redis.

The decision path costs one round trip each way: `snapshot` is a single MGET (every
fact it reads is a string key), `commit` a single EVALSHA of `lua/commit.lua`, which
re-checks the guards and applies every effect, the idempotency record and the ledger
entry atomically. Scripts are addressed by their SHA-1; a server that forgot them (a
restart, SCRIPT FLUSH) answers NOSCRIPT, and the script is loaded and run again — safe,
because a NOSCRIPT script did not run.

Three connections, one per kind of traffic:

- the decision path (`snapshot`, `commit`, and `ping`, which tells whether that path
  works) runs on `resp.RespClient`: one auto-pipelined connection, ~10 µs of CPU per
  call where redis-py's asyncio client spends 80–100 µs — that difference is a quarter
  of what a validation costs;
- ledger reads (`ledger_read`: the dashboard's live feed, lookups, settlement) run on a
  second `RespClient`: every process's live feed reads every record of the day, so the
  per-record cost matters (redis-py's stream parsing was ~7 µs a record), and their
  bulk replies should not queue ahead of the decision path's;
- the registry, block lists and the audit log (operator calls) stay
  on redis-py's pooled client, whose CPU does not matter there.

Whatever any of them raises — connection errors, timeouts, error replies, and answers that do
not decode — becomes `StoreUnavailable` in one place, `_unavailable`, which both the
decision path's `_BOUNDARY` and redis-py's `_Call` go through.
Neither client retries: a connection that died is replaced on next use, and a request
that failed mid-flight is retried by the terminal with the same request_id, which the
idempotency record makes safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from types import TracebackType
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from validator.policy.types import Category
from validator.state import codec, keys
from validator.state.boundary import ErrorBoundary
from validator.state.keys import SnapshotKeys
from validator.state.reindex import rebuild_missing
from validator.state.resp import NoScriptError as RespNoScript
from validator.state.resp import RespClient, RespError
from validator.state.script import COMMIT, LEASE, PUT_HOLDERS, RELEASE, Script, commit_call
from validator.state.store import (
    FEED_ERRORS_KEPT,
    Block,
    BlockKind,
    Commit,
    CommitResult,
    Committed,
    Conflict,
    Duplicate,
    Guard,
    Snapshot,
    SnapshotQuery,
    StoreUnavailable,
)

HOLDER_BATCH = 500  # records per script call: bounds how long one import blocks Redis


def _unavailable(exc: BaseException | None) -> StoreUnavailable | None:
    """The store's error boundary: what a foreign error becomes (None: not ours to map).

    Only answers are decoded inside a boundary (callers' mistakes are raised before), so
    a ValueError, KeyError or TypeError there means Redis answered garbage.
    """
    # OSError: ConnectionError, TimeoutError (the deadlines of both clients)
    if isinstance(exc, RedisError | RespError | OSError):
        return StoreUnavailable(f"redis: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return StoreUnavailable(f"redis answered garbage: {type(exc).__name__}")
    return None


# Around a RespClient call (the decision path, ledger reads): the client bounds every
# call by its own deadline, so nothing is left to do on success.
_BOUNDARY = ErrorBoundary(_unavailable)


class _Call:
    """One redis-py call, and that client's error boundary: `async with self._call():`.

    The call has `timeout_s` in all, waiting for a free pooled connection included.
    Redis errors, the deadline and answers that do not decode leave it as
    StoreUnavailable. Cancelling mid-call is safe: redis-py drops a connection whose
    answer it did not read.
    """

    __slots__ = ("_deadline", "_slots")

    def __init__(self, slots: asyncio.Semaphore, timeout_s: float) -> None:
        self._slots = slots
        self._deadline = asyncio.timeout(timeout_s)

    async def __aenter__(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: returns without suspending
        else:
            try:
                async with asyncio.timeout_at(self._deadline.when()):
                    await self._slots.acquire()
            except TimeoutError:
                raise StoreUnavailable("every Redis connection is busy") from None
        await self._deadline.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._deadline.__aexit__(kind, exc, tb)  # raises TimeoutError if it fired
        except TimeoutError as expired:
            exc = expired
        finally:
            self._slots.release()
        mapped = _unavailable(exc)
        if mapped is not None:
            raise mapped from exc


class RedisStore:
    """The `Store` protocol on Redis. Owns its clients and closes them in `close()`."""

    def __init__(
        self,
        client: Redis,
        hot: RespClient,
        bulk: RespClient | None = None,
        *,
        ledger_retention_days: int = 400,
        max_in_flight: int = 64,
        timeout_s: float = 1.0,
    ) -> None:
        self._client = client
        self._hot = hot
        self._bulk = bulk or hot
        self._slots = asyncio.Semaphore(max_in_flight)
        self._timeout_s = timeout_s
        self._retention_s = ledger_retention_days * 86400
        self._indexed = False  # the listing indexes checked (reindex.py)
        self._indexing = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ledger_retention_days: int = 400,
        max_connections: int = 64,
        timeout_s: float = 1.0,
    ) -> RedisStore:
        """A store on `redis://host:port/db`, with `timeout_s` on every call.

        Connecting, each answer and waiting for a free pooled connection are all bounded
        by `timeout_s`, so a vanished or hung server becomes StoreUnavailable within about
        that long. `max_connections` bounds the pool of the operator-side client; the
        decision path shares one pipelined connection.
        """
        pool = ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=None,  # the per-call deadline of _Call bounds reads instead
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(
            Redis.from_pool(pool),
            RespClient(url, timeout_s=timeout_s),
            RespClient(url, timeout_s=timeout_s),
            ledger_retention_days=ledger_retention_days,
            max_in_flight=max_connections,
            timeout_s=timeout_s,
        )

    def _call(self) -> _Call:
        return _Call(self._slots, self._timeout_s)

    async def rebuild_indexes(self) -> dict[str, int]:
        """Rebuild, once, a listing index that data written before it lacks (reindex.py):
        at open, or before the first listing if Redis was away then."""
        async with self._indexing:
            if self._indexed:
                return {}
            gained = await rebuild_missing(self._client, self._call)
            self._indexed = True
            return gained

    # --- the decision path (RespClient) ---

    async def snapshot(self, query: SnapshotQuery) -> Snapshot:
        """Every fact the decision needs, in one MGET."""
        wanted = SnapshotKeys.of(query).present()
        with _BOUNDARY:
            values = await self._hot.execute("MGET", *wanted.values())
            return codec.decode_snapshot(dict(zip(wanted, values, strict=True)))

    async def commit(self, commit: Commit) -> CommitResult:
        """Guards, effects, idempotency record and ledger entry in one EVALSHA."""
        call = ("EVALSHA", COMMIT.sha, *commit_call(commit, self._retention_s))
        with _BOUNDARY:
            try:  # awaited here, not in a helper coroutine: one frame less per validation
                tag, value = await self._hot.execute(*call)
            except RespNoScript:  # the server forgot the script (restart, SCRIPT FLUSH)
                await self._hot.execute("SCRIPT", "LOAD", COMMIT.source)
                tag, value = await self._hot.execute(*call)
            if tag == 2:
                return Committed(value.decode())
            if tag == 1:
                return Conflict(Guard(value.decode()))
            if tag == 0:
                return Duplicate(codec.decode_stored(value))
            raise ValueError(f"unexpected commit answer {tag!r}")

    async def _eval(
        self, script: Script, script_keys: tuple[str, ...], args: tuple[Any, ...]
    ) -> Any:
        """EVALSHA on redis-py (the same NOSCRIPT rule); callers hold a `_Call`."""
        try:
            return await self._client.evalsha(script.sha, len(script_keys), *script_keys, *args)
        except NoScriptError:
            await self._client.script_load(script.source)
            return await self._client.evalsha(script.sha, len(script_keys), *script_keys, *args)

    # --- eligibility registry ---

    async def get_holder(self, holder_ref: str) -> tuple[Category, ...] | None:
        async with self._call():
            raw = await self._client.get(keys.holder(holder_ref))
            return None if raw is None else codec.decode_categories(raw)

    async def put_holders(self, records: list[tuple[str, tuple[Category, ...]]]) -> list[bool]:
        """Upsert a batch (one script call per HOLDER_BATCH records); True where created.

        Each chunk is atomic; a failure between chunks leaves the earlier ones applied,
        which an upsert can simply repeat.
        """
        created: list[bool] = []
        for start in range(0, len(records), HOLDER_BATCH):
            chunk = records[start : start + HOLDER_BATCH]
            holder_keys = tuple(keys.holder(ref) for ref, _ in chunk)
            values = tuple(codec.encode_categories(categories) for _, categories in chunk)
            async with self._call():
                await self._client.zadd(keys.holder_index(), {ref: 0 for ref, _ in chunk})
                answer = await self._eval(PUT_HOLDERS, holder_keys, values)
                created.extend(bool(int(flag)) for flag in answer)
        return created

    async def delete_holder(self, holder_ref: str) -> bool:
        """DEL, then the ref out of the registry's index (an index entry whose record is
        gone is skipped by `list_holders`, so the order makes a crash between harmless)."""
        async with self._call():
            deleted = await self._client.delete(keys.holder(holder_ref)) > 0
            await self._client.zrem(keys.holder_index(), holder_ref)
            return deleted

    async def list_holders(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, tuple[Category, ...]]]:
        """A page of the registry's index (ZRANGEBYLEX), then its records (MGET)."""
        page = await self._index_page(keys.holder_index(), keys.holder, after, count)
        return [(ref, codec.decode_categories(raw)) for ref, raw in page]

    # --- block lists ---

    async def get_block(self, kind: BlockKind, ident: str) -> Block | None:
        async with self._call():
            return codec.decode_block(await self._client.get(keys.block(kind, ident)))

    async def put_block(self, kind: BlockKind, ident: str, block: Block) -> Block | None:
        """Set a block; answers the previous one (None if there was none). SET … GET and
        the id into the kind's index (`list_blocks`), in one MULTI."""
        async with self._call(), self._client.pipeline(transaction=True) as tx:
            tx.set(keys.block(kind, ident), codec.encode_block(block), get=True)
            tx.zadd(keys.block_index(kind), {ident: 0})
            previous, _ = await tx.execute()
            return codec.decode_block(previous if isinstance(previous, bytes) else None)

    async def delete_block(self, kind: BlockKind, ident: str) -> Block | None:
        """Remove a block; answers the removed one (None if there was none). GETDEL and
        the id out of the kind's index, in one MULTI."""
        async with self._call(), self._client.pipeline(transaction=True) as tx:
            tx.getdel(keys.block(kind, ident))
            tx.zrem(keys.block_index(kind), ident)
            removed, _ = await tx.execute()
            return codec.decode_block(removed)

    async def list_blocks(
        self, kind: BlockKind, after: str | None = None, count: int = 100
    ) -> list[tuple[str, Block]]:
        """A page of the kind's index (ZRANGEBYLEX), then its blocks (MGET): the key space
        is never scanned. An id whose block is gone is left out."""
        page = await self._index_page(keys.block_index(kind),
                                      lambda ident: keys.block(kind, ident), after, count)
        pairs = [(ident, codec.decode_block(raw)) for ident, raw in page]
        return [(ident, block) for ident, block in pairs if block is not None]

    async def _index_page(self, index: str, record_key: Callable[[str], str],
                          after: str | None, count: int) -> list[tuple[str, bytes | str]]:
        """Up to `count` ids of a sorted-set index after `after` (ZRANGEBYLEX), with the
        records they name (MGET); an id whose record is gone is left out."""
        if count <= 0:
            return []
        if not self._indexed:
            await self.rebuild_indexes()
        low = "-" if after is None else "(" + after
        async with self._call():
            ids = [i.decode() if isinstance(i, bytes) else i for i in
                   await self._client.zrangebylex(index, low, "+", 0, count)]
            if not ids:
                return []
            raws = await self._client.mget([record_key(i) for i in ids])
            return [(i, raw) for i, raw in zip(ids, raws, strict=True) if raw is not None]

    # --- ledger and audit log ---

    async def ledger_read(
        self, day: dt.date, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Records of `day`'s ledger in commit order, after id `after` (exclusive)."""
        if after is not None:
            keys.parse_entry_id(after)  # a malformed id is the caller's ValueError
        if count <= 0:
            return []  # as XRANGE … COUNT 0 would answer, without the round trip
        start = "-" if after is None else "(" + after
        # On a RespClient of its own: the live feed reads every record of the day in
        # every process, and redis-py's stream parsing cost ~7 µs a record; a connection
        # apart from the decision path's keeps these bulk replies out of its way.
        with _BOUNDARY:
            entries = await self._bulk.execute("XRANGE", keys.ledger(day), start, "+",
                                               "COUNT", count)
            return codec.decode_raw_entries(entries)

    async def audit_append(self, entry: bytes) -> str:
        async with self._call():
            entry_id = await self._client.xadd(keys.AUDIT, {"r": entry})
            return entry_id.decode() if isinstance(entry_id, bytes) else entry_id

    async def audit_read(self, count: int = 100) -> list[tuple[str, bytes]]:
        """The newest `count` audit entries, newest first."""
        if count <= 0:
            return []
        async with self._call():
            return codec.decode_entries(await self._client.xrevrange(keys.AUDIT, "+", "-", count))

    # --- the live feed's coordination (redis-py: once a tick, not per validation) ---

    async def feed_lease(self, holder: str, ttl_s: float) -> bool:
        """Take or keep the lease: one script, so that no two holders both see it free."""
        async with self._call():
            answer = await self._eval(LEASE, (keys.FEED_LEASE,), (holder, _ms(ttl_s)))
            return bool(int(answer))

    async def feed_release(self, holder: str) -> None:
        async with self._call():
            await self._eval(RELEASE, (keys.FEED_LEASE,), (holder,))

    async def feed_publish(self, board: bytes, ttl_s: float) -> None:
        async with self._call():
            await self._client.set(keys.FEED_BOARD, board, px=_ms(ttl_s))

    async def feed_board(self) -> bytes | None:
        async with self._call():
            raw = await self._client.get(keys.FEED_BOARD)
            if raw is not None and not isinstance(raw, bytes):
                raise TypeError("the published board is not a string")
            return raw

    async def feed_errors_add(self, entry: bytes) -> str:
        """XADD with MAXLEN ~: Redis trims whole nodes, so a few more may stay."""
        async with self._call():
            entry_id = await self._client.xadd(keys.FEED_ERRORS, {"r": entry},
                                               maxlen=FEED_ERRORS_KEPT, approximate=True)
            return entry_id.decode() if isinstance(entry_id, bytes) else entry_id

    async def feed_errors_read(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        if after is not None:
            keys.parse_entry_id(after)  # a malformed id is the caller's ValueError
        if count <= 0:
            return []
        start = "-" if after is None else "(" + after
        async with self._call():
            return codec.decode_entries(
                await self._client.xrange(keys.FEED_ERRORS, start, "+", count))

    # --- lifecycle ---

    async def ping(self) -> None:
        """One PING on the decision path's connection: ready means validations can run."""
        with _BOUNDARY:
            await self._hot.execute("PING")

    async def close(self) -> None:
        """Close both clients; a server that is already gone is no error here."""
        await self._hot.close()
        if self._bulk is not self._hot:
            await self._bulk.close()
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def _ms(seconds: float) -> int:
    """A ttl in whole milliseconds, at least one (PX 0 is an error)."""
    return max(1, round(seconds * 1000))
