"""`RedisClusterStore`: the store on a Redis Cluster (redis-py's cluster client).

The key layout (`slots.py`) puts everything one holder's decision touches in one slot, so
the commit stays one atomic script (`lua/commit.lua`, the single Redis's), run in the
holder's slot. Two facts live elsewhere and are read first: the card's block (in the card
number's slot; the answer is handed to the script) and the spot's capacity (a reservation
in the spot's slot, `capacity.py`). The snapshot is one MGET per slot it needs (the
holder's, the card's, the spot's), sent together.

redis-py follows MOVED and ASK by itself and refreshes its slot map; TRYAGAIN,
CLUSTERDOWN, a node that does not answer and a call past `timeout_s` become
`StoreUnavailable` in one place (`_unavailable`), which the service answers with 503
and `Retry-After`: the terminal retries with the same request_id, and the idempotency
record makes that safe. A slot whose primary died answers again once the cluster has
promoted its replica; the client finds the new primary through MOVED or its next slot
map refresh, without a restart.

The operator-side calls (registry, blocks, audit, feed, ledger reads) are in
`cluster_ops.py`; this class adds them by inheritance so that one object serves every
role, as the single-Redis store does.
"""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from validator.state import capacity, codec, slots
from validator.state.script import COMMIT, Script, commit_call
from validator.state.store import (
    USAGE_TTL_S,
    Commit,
    CommitResult,
    Committed,
    Conflict,
    Duplicate,
    Guard,
    Snapshot,
    SnapshotQuery,
    StoredResponse,
    StoreUnavailable,
)


def _unavailable(exc: BaseException | None) -> StoreUnavailable | None:
    """The cluster store's error boundary: what a foreign error becomes."""
    if isinstance(exc, RedisError | RedisClusterException | OSError):
        return StoreUnavailable(f"redis cluster: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return StoreUnavailable(f"redis cluster answered garbage: {type(exc).__name__}")
    return None


class _Bounded:
    """`async with store._bounded():` — `timeout_s` for the call, errors translated."""

    __slots__ = ("_deadline",)

    def __init__(self, timeout_s: float) -> None:
        self._deadline = asyncio.timeout(timeout_s)

    async def __aenter__(self) -> None:
        await self._deadline.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._deadline.__aexit__(kind, exc, tb)
        except TimeoutError as expired:
            exc = expired
        mapped = _unavailable(exc)
        if mapped is not None:
            raise mapped from exc


class ClusterBase:
    """The client, its bounds, and the calls both halves of the store share."""

    def __init__(self, client: RedisCluster, *, ledger_retention_days: int = 400,
                 timeout_s: float = 1.0,
                 reservation_ttl_ms: int = capacity.RESERVATION_TTL_MS,
                 clock_margin_ms: int = capacity.CLOCK_MARGIN_MS) -> None:
        self._client = client
        self._reservation = (reservation_ttl_ms, clock_margin_ms)
        self._timeout_s = timeout_s
        self._retention_s = ledger_retention_days * 86400

    def _bounded(self) -> _Bounded:
        return _Bounded(self._timeout_s)

    async def eval_script(self, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]
                          ) -> Any:
        """EVALSHA, loading the script on a node that does not know it (NOSCRIPT)."""
        async with self._bounded():
            try:
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self._client.script_load(script.source)
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)

    async def exists(self, key: str) -> bool:
        async with self._bounded():
            return bool(await self._client.exists(key))


class DecisionPath(ClusterBase):
    """Snapshot and commit on the cluster (the `DecisionStore` role)."""

    async def snapshot(self, query: SnapshotQuery) -> Snapshot:
        """One MGET in the request's slot; the card's block and the spot's count beside."""
        q, ref = query, query.holder_ref
        group = slots.request_group(q.terminal_id, ref)
        wanted = {"stored": slots.idempotency(group, q.terminal_id, q.request_id)}
        if ref is not None:
            wanted |= {"holder_block": slots.block("holder", ref), "holder": slots.holder(ref),
                       "rides": slots.rides(ref, q.local_date),
                       "companion": slots.companion(ref, q.terminal_id)}
            if q.nonce is not None:
                wanted["nonce"] = slots.nonce(ref, q.nonce)
            if q.card_id is not None:
                wanted["atc"] = slots.atc(ref, q.card_id)
            if q.spot_id is not None:
                wanted["entered"] = slots.entered(ref, q.local_date, q.spot_id)
        apart = {}
        elsewhere = _terminal_record(q.terminal_id, q.request_id, ref)
        if elsewhere is not None:
            apart["stored_elsewhere"] = elsewhere
        if q.card_no is not None:
            apart["card_block"] = slots.block("card", q.card_no)
        if q.spot_id is not None:
            apart["capacity"] = slots.capacity(q.spot_id, q.local_date)
        async with self._bounded():
            values, *others = await asyncio.gather(
                self._client.mget(list(wanted.values())),
                *(self._client.get(key) for key in apart.values()))
            if not isinstance(values, list):
                raise TypeError("MGET answered no array")
            raw = dict(zip(wanted, values, strict=True)) | dict(zip(apart, others, strict=True))
            if raw["stored"] is None:
                raw["stored"] = raw.pop("stored_elsewhere", None)
            return codec.decode_snapshot(raw)

    async def commit(self, commit: Commit) -> CommitResult:
        """Card block and capacity reservation first, then the script in the holder's
        slot; the reservation is settled by what the script answered."""
        c, ref, spot = commit, commit.holder_ref, commit.spot_id
        if c.spot_capacity is not None and (spot is None or ref is None):
            raise ValueError("a commit with a capacity guard needs its spot and holder")
        token = os.urandom(8).hex() if c.spot_capacity is not None else None
        named = slots.commit_keys(c, token)  # a caller's mistake raises before any I/O
        facts: dict[str, str] = {}
        card = c.card_no if c.assume_no_status else None
        stored, blocked, deadline = await asyncio.gather(
            self._stored_elsewhere(c), self._card_blocked(card), self._reserve(c, token))
        if stored is not None:  # an earlier answer, decided before a holder was known
            if token is not None and deadline is not None:
                assert spot is not None and ref is not None
                await capacity.settle(self, spot, c.local_date, token, ref, used=False)
            return Duplicate(stored)
        if blocked:
            facts["card_blocked"] = "1"
        if token is not None and deadline is None:
            facts["capacity_full"] = "1"
            del named["reservation"]
            token = None
        elif deadline is not None:
            facts["reservation_deadline_ms"] = str(deadline)
        result = await self._run(c, named, facts)
        if token is not None:
            assert spot is not None and ref is not None
            await capacity.settle(self, spot, c.local_date, token, ref,
                                  used=isinstance(result, Committed))
        return result

    async def _stored_elsewhere(self, c: Commit) -> StoredResponse | None:
        key = _terminal_record(c.terminal_id, c.request_id, c.holder_ref)
        if key is None:
            return None
        async with self._bounded():
            raw = await self._client.get(key)
            if raw is not None and not isinstance(raw, bytes):
                raise TypeError("an idempotency record is not bytes")
            return None if raw is None else codec.decode_stored(raw)

    async def _card_blocked(self, card_no: str | None) -> bool:
        return card_no is not None and await self.exists(slots.block("card", card_no))

    async def _reserve(self, c: Commit, token: str | None) -> int | None:
        if token is None or c.spot_id is None or c.holder_ref is None or c.spot_capacity is None:
            return None
        ttl_ms, margin_ms = self._reservation
        return await capacity.reserve(self, c.spot_id, c.local_date, c.spot_capacity, token,
                                      c.holder_ref, USAGE_TTL_S, ttl_ms=ttl_ms,
                                      margin_ms=margin_ms)

    async def _run(self, c: Commit, named: dict[str, str], facts: dict[str, str]
                   ) -> CommitResult:
        call = commit_call(c, self._retention_s, named, facts)
        numkeys = int(call[0])
        tag, value = await self.eval_script(COMMIT, tuple(map(str, call[1:1 + numkeys])),
                                            call[1 + numkeys:])
        async with self._bounded():
            if tag == 2:
                group = slots.request_group(c.terminal_id, c.holder_ref)
                return Committed(merged_id(value.decode(), group))
            if tag == 1:
                return Conflict(Guard(value.decode()))
            if tag == 0:
                return Duplicate(codec.decode_stored(value))
            raise ValueError(f"unexpected commit answer {tag!r}")


def _terminal_record(terminal_id: str, request_id: str, holder_ref: str | None) -> str | None:
    """Where the request's answer is, had it been decided before its holder was known
    (a time-dependent deny: clock skew, an expired QR — a retry may get past it); None
    if that is the request's own slot."""
    if holder_ref is None:
        return None
    group = slots.group_of(terminal_id)
    if group == slots.group_of(holder_ref):
        return None
    return slots.idempotency(group, terminal_id, request_id)


def merged_id(stream_id: str, group: int) -> str:
    """A group stream's entry id as an id of the day's merged ledger: `<ms>-<seq·G + g>`,
    so that ids order by time, then by sequence, then by group, and parse as stream ids."""
    ms, _, seq = stream_id.partition("-")
    return f"{ms}-{int(seq) * slots.GROUPS + group}"


def split_id(entry_id: str) -> tuple[int, int, int]:
    """A merged id → (ms, seq, group)."""
    ms, _, rest = entry_id.partition("-")
    seq, group = divmod(int(rest), slots.GROUPS)
    return int(ms), seq, group
