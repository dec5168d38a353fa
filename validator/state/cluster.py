"""`RedisClusterStore`: the store on a Redis Cluster (redis-py's cluster client).

The key layout (`slots.py`) puts everything one holder's decision touches in one slot, so
the commit stays one atomic script (`lua/commit.lua`, the single Redis's), run in the
holder's slot. A card's block is copied into every group (`slots.py`), so the script
checks it in the holder's slot too. One fact lives elsewhere and is reserved first: the
spot's capacity (in the spot's slot, `capacity.py`). The snapshot is one MGET in the
holder's slot, with the spot's count beside. A request's idempotency record is in the
group of the holder its credential names (`slots.py`), whatever its decision: a bus
ride's commit is one command, a spot entry's a reservation and a commit (the used
reservation is settled by the next one, `capacity.UsedReservations`).

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
from collections.abc import Awaitable
from types import TracebackType
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from validator.state import capacity, codec, slots
from validator.state.boundary import ErrorBoundary
from validator.state.resp import NoScriptError, RespError
from validator.state.resp_cluster import ClusterRespClient
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
    StoreUnavailable,
)

CONNECTIONS_PER_OPERATION = 3  # a snapshot: its MGET, the card's block, the spot


# What an operator can do about the failures redis-py describes at length.
_ADVICE = (
    ("cannot be connected", "no seed node answers: check that the nodes are up and that "
                            "--store lists some of them"),
    ("Cluster mode is not enabled", "a seed node is a plain Redis: use --store redis://"),
    ("slots are not covered", "the cluster does not serve every slot (cluster_state:fail): "
                              "wait for a failover, or repair it (redis-cli --cluster fix)"),
)


_FOREIGN = (RedisError, RedisClusterException, RespError, OSError)
_GARBAGE = (ValueError, KeyError, TypeError)


def _unavailable(exc: BaseException | None, label: str = "redis cluster"
                 ) -> StoreUnavailable | None:
    """The cluster store's error boundary: what a foreign error becomes."""
    if exc is None:  # a call that succeeded: the common exit, so tested first
        return None
    if isinstance(exc, _FOREIGN):
        text = str(exc)
        for clue, advice in _ADVICE:
            if clue in text:
                return StoreUnavailable(f"{label}: {advice}")
        return StoreUnavailable(f"{label}: {type(exc).__name__}: {text}")
    if isinstance(exc, _GARBAGE):
        return StoreUnavailable(f"redis cluster answered garbage: {type(exc).__name__}")
    return None


class _Bounded:
    """`async with store._bounded():` — one of `max_in_flight` operations, `timeout_s`
    for it (waiting for its turn included), errors translated.

    redis-py's cluster client fails a call at once when a node's connection pool is
    exhausted: bounding the operations in flight (each uses at most
    `CONNECTIONS_PER_OPERATION` connections) keeps a burst waiting instead of failing.
    """

    __slots__ = ("_deadline", "_label", "_slots")

    def __init__(self, slots: asyncio.Semaphore, timeout_s: float, label: str) -> None:
        self._slots = slots
        self._label = label
        self._deadline = asyncio.timeout(timeout_s)

    async def __aenter__(self) -> None:
        await self._deadline.__aenter__()
        try:
            await self._slots.acquire()
        except BaseException as exc:  # the deadline fired while waiting for a turn
            await self._exit(type(exc), exc)
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._slots.release()
        await self._exit(kind, exc)

    async def _exit(self, kind: type[BaseException] | None, exc: BaseException | None) -> None:
        try:
            await self._deadline.__aexit__(kind, exc, None)
        except TimeoutError as expired:
            exc = expired
        mapped = _unavailable(exc, self._label)
        if mapped is not None:
            raise mapped from exc


# `with _HOT:` around lean-client calls (their deadline is the client's own).
_HOT = ErrorBoundary(_unavailable)


class ClusterBase:
    """The clients, their bounds, and the calls both halves of the store share: the
    lean cluster client (`resp_cluster.py`) for the decision path and every script,
    redis-py's cluster client for the operator-side commands."""

    def __init__(self, client: RedisCluster, hot: ClusterRespClient, *,
                 ledger_retention_days: int = 400, timeout_s: float = 1.0,
                 max_in_flight: int = 256,
                 reservation_ttl_ms: int = capacity.RESERVATION_TTL_MS,
                 clock_margin_ms: int = capacity.CLOCK_MARGIN_MS,
                 min_replicas: int = 0) -> None:
        self._client = client
        # A commit is answered only once this many replicas have it (WAIT), so that a
        # failover loses no decision a terminal was told; within the call's deadline.
        self._min_replicas = min_replicas
        self._wait_ms = max(1, int(timeout_s * 1000) // 2)
        self._hot = hot
        # Errors name the cluster by its seed nodes (the --store URL, without a password).
        self.label = "redis cluster " + ",".join(f"{h}:{p}" for h, p in hot.seeds)
        self._reservation = (reservation_ttl_ms, clock_margin_ms)
        self._used = capacity.UsedReservations()
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_in_flight)
        self._retention_s = ledger_retention_days * 86400

    def _bounded(self) -> _Bounded:
        return _Bounded(self._slots, self._timeout_s, self.label)

    async def eval_script(self, script: Script, keys: tuple[str, ...], args: tuple[Any, ...]
                          ) -> Any:
        """EVALSHA on the keys' primary, loading the script there if it does not know it
        (NOSCRIPT: a new primary, a restart; the script did not run)."""
        call = (len(keys), *keys, *args)
        with _HOT:
            try:  # awaited here, not in a helper coroutine: one frame less per call
                return await self._hot.execute(keys[0], "EVALSHA", script.sha, *call)
            except NoScriptError:
                return await self._load_and_run(script, keys[0], call)

    async def _load_and_run(self, script: Script, key: str, call: tuple[Any, ...]) -> Any:
        """After NOSCRIPT: the script loaded on the primary of `key`, then `call` (numkeys,
        KEYS, ARGV) run there."""
        await self._hot.execute(key, "SCRIPT", "LOAD", script.source)
        return await self._hot.execute(key, "EVALSHA", script.sha, *call)

    async def exists(self, key: str) -> bool:
        with _HOT:
            return bool(await self._hot.execute(key, "EXISTS", key))


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
        hot = self._hot
        apart: dict[str, Awaitable[Any]] = {}
        if q.card_no is not None:
            if ref is not None:
                wanted["card_block"] = slots.card_block_mirror(ref, q.card_no)
            else:
                block = slots.block("card", q.card_no)
                apart["card_block"] = hot.send(block, "GET", block)
        if q.spot_id is not None:
            cap = slots.capacity(q.spot_id, q.local_date)
            apart["capacity"] = hot.send(cap, "GET", cap)
        with _HOT:
            if not apart:  # a holder's snapshot at a bus: its one MGET, no gathering
                values = await hot.execute(wanted["stored"], "MGET", *wanted.values())
                return codec.decode_snapshot(dict(zip(wanted, values, strict=True)))
            values, *others = await asyncio.gather(
                hot.send(wanted["stored"], "MGET", *wanted.values()), *apart.values())
            raw = dict(zip(wanted, values, strict=True)) | dict(zip(apart, others, strict=True))
            return codec.decode_snapshot(raw)

    async def commit(self, commit: Commit) -> CommitResult:
        """Capacity reservation first, then the script in the holder's slot. An unused
        reservation is given back at once; a used one is left for the next reservation
        at the spot to settle (`capacity.UsedReservations`)."""
        c, ref, spot = commit, commit.holder_ref, commit.spot_id
        if c.spot_capacity is None:
            return await self._run(c, slots.commit_keys(c, None), None)
        if spot is None or ref is None:
            raise ValueError("a commit with a capacity guard needs its spot and holder")
        token = os.urandom(8).hex()
        named = slots.commit_keys(c, token)  # a caller's mistake raises before any I/O
        ttl_ms, margin_ms = self._reservation
        deadline = await capacity.reserve(self, spot, c.local_date, c.spot_capacity, token, ref,
                                          USAGE_TTL_S, ttl_ms=ttl_ms, margin_ms=margin_ms,
                                          used=self._used)
        if deadline is None:
            del named["reservation"]
            return await self._run(c, named, {"capacity_full": "1"})
        result = await self._run(c, named, {"reservation_deadline_ms": str(deadline)})
        if isinstance(result, Committed):
            self._used.add(spot, c.local_date, token, ref)
        else:
            await capacity.settle(self, spot, c.local_date, token, ref, used=False)
        return result

    async def _replicated(self, key: str) -> None:
        """WAIT on the connection the commit went over (the lean client has one per
        primary): StoreUnavailable unless `min_replicas` replicas have it. The terminal
        retries with the same request_id, and is answered from the stored record."""
        acked = await self._hot.execute(key, "WAIT", self._min_replicas, self._wait_ms)
        if int(acked) < self._min_replicas:
            raise StoreUnavailable(f"the commit reached {acked} of {self._min_replicas} "
                                   "replicas in time")

    async def _run(self, c: Commit, named: dict[str, str], facts: dict[str, str] | None
                   ) -> CommitResult:
        call = commit_call(c, self._retention_s, named, facts)
        key = named["idempotency"]  # every key of the call is in its slot
        with _HOT:
            try:
                tag, value = await self._hot.execute(key, "EVALSHA", COMMIT.sha, *call)
            except NoScriptError:
                tag, value = await self._load_and_run(COMMIT, key, call)
            if tag == 2 and self._min_replicas:
                await self._replicated(key)
            if tag == 2:
                return Committed(slots.merged_id(value.decode(), slots.commit_group(c)))
            if tag == 1:
                return Conflict(Guard(value.decode()))
            if tag == 0:
                return Duplicate(codec.decode_stored(value))
            raise ValueError(f"unexpected commit answer {tag!r}")
