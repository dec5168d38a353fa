"""Micro-benchmarks above the primitives: the decision pipeline and the store round trip.

- `pipeline_rows`: `Decider.validate` in-process, HTTP excluded — with the memory store
  (pure CPU of a decision) and with the Redis store (client CPU, 32 requests at a time,
  as a busy server interleaves them). The Redis URL may be a `rediscluster://` one: the
  rows then measure the Redis Cluster store.
- `store_rows`: one snapshot + one commit, alone (the latency floor of a validation's
  two round trips) and 32 at a time (the client CPU that auto-pipelining leaves).

Figures are CPU µs of this process (`time.process_time`) per validation, the best of 3
rounds; the Redis server's own CPU is another process and is not included.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import creds
from validator.clock import SystemClock
from validator.config import load_config
from validator.credentials.kinds import build_verifiers
from validator.credentials.ssc_card import CardTap
from validator.decide import Decider, QrScan, ValidationRequest
from validator.keyset import load_keyset
from validator.state import open_store
from validator.state.memory import MemoryStore
from validator.state.store import Commit, SnapshotQuery, Store

ROUNDS = 3
BATCH = 32

Row = dict[str, Any]


async def _cpu_per_call(
    calls: Sequence[Callable[[], Awaitable[object]]], batch: int
) -> tuple[float, float]:
    """(wall µs, CPU µs) per call, running `batch` calls at a time."""
    started, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(calls), batch):
        await asyncio.gather(*(call() for call in calls[first:first + batch]))
    n = len(calls)
    return (time.perf_counter() - started) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def validation_requests(
    keys_dir: Path, config_dir: Path, kind: str, n: int
) -> list[ValidationRequest]:
    terminal = load_config(config_dir).terminals[creds.TERMINAL]
    now = int(time.time())
    scanned = dt.datetime.fromtimestamp(now, dt.UTC)
    credentials: list[QrScan | CardTap]
    if kind == "card":
        credentials = [CardTap(**{k: v for k, v in tap.items() if k != "type"})
                       for tap in creds.card_taps(keys_dir, n, now)]
    else:  # "QR ES256", "QR EdDSA" (device keys under the ES256 issuer), "QR SM2" (all-SM2)
        alg: creds.Alg = "EdDSA" if kind.endswith("EdDSA") else \
            "SM2" if kind.endswith("SM2") else "ES256"
        credentials = [QrScan(c["qr"]) for c in creds.qr_codes(
            keys_dir, n, now, device_alg=alg, issuer_alg="SM2" if alg == "SM2" else "ES256")]
    return [ValidationRequest(
        terminal_id=terminal.id, operator=terminal.operator, venue=terminal.venue,
        request_id=os.urandom(9).hex(), scanned_at=scanned, scanned_at_text=scanned.isoformat(),
        credential=credential, companion=False, body_sha256=os.urandom(32).hex(),
    ) for credential in credentials]


async def _pipeline(keys_dir: Path, config_dir: Path, store: Store, kind: str, n: int) -> float:
    keyset, engine = load_keyset(keys_dir), load_config(config_dir).engine
    decider = Decider(engine=engine, verifiers=build_verifiers(keyset),
                      store=store, clock=SystemClock())
    best = float("inf")
    for _ in range(ROUNDS):
        requests = validation_requests(keys_dir, config_dir, kind, n)
        now, today = time.time(), engine.local_date(time.time())
        for req in requests:  # a returning holder: level-1 and card-key caches are warm
            decider._verify(req, now, today)
        calls = [functools.partial(decider.validate, req) for req in requests]
        best = min(best, (await _cpu_per_call(calls, BATCH))[1])
    return best


async def pipeline_rows(keys_dir: Path, config_dir: Path, redis_url: str | None) -> list[Row]:
    rows = []
    stores: list[tuple[str, Callable[[], Awaitable[Store]]]] = [("memory store", _memory)]
    if redis_url is not None:
        stores.append((f"{_kind(redis_url)} store, client CPU", lambda: open_store(redis_url)))
    for label, make in stores:
        for kind, n in (("card", 2000), ("QR ES256", 500), ("QR EdDSA", 500), ("QR SM2", 500)):
            store = await make()
            try:
                us = await _pipeline(keys_dir, config_dir, store, kind, n)
            finally:
                await store.close()
            rows.append({"name": f"decision without HTTP, {kind} ({label})", "us": round(us, 2),
                         "note": "verify, snapshot, policy, ledger record, commit"})
    return rows


# A ledger record of the usual size; the store does not read it, but a dashboard might.
_LEDGER = orjson.dumps({"schema": 1, "decision": "accept", "reason": "ok", "note": "x" * 400})


def _commit(i: int, tag: str) -> Commit:
    """A commit with every guard, each passing: the most a commit does."""
    ref = hashlib.md5(f"{tag}{i}".encode()).hexdigest()
    return Commit(
        terminal_id=creds.TERMINAL, request_id=f"{tag}-{i}", body_sha256="0" * 64,
        response=b'{"decision":"accept"}' * 10, ledger=_LEDGER, local_date=dt.date.today(),
        holder_ref=ref, nonce=os.urandom(16), card_id=f"card-{tag}-{i}", atc=1,
        concession_ride_cap=10**9, spot_id="S01", spot_capacity=10**9, concession_entry=True,
        companion_open_at=time.time(),
    )


def _query(c: Commit) -> SnapshotQuery:
    return SnapshotQuery(terminal_id=c.terminal_id, request_id=c.request_id,
                         local_date=c.local_date, holder_ref=c.holder_ref, card_no="C00000001",
                         card_id=c.card_id, nonce=c.nonce, spot_id=c.spot_id)


async def _memory() -> Store:
    return MemoryStore()


def _kind(url: str) -> str:
    return "Redis Cluster" if url.startswith("rediscluster://") else "Redis"


async def store_rows(redis_url: str, n: int = 2000) -> list[Row]:
    store = await open_store(redis_url)
    rows = []
    try:
        await store.ping()
        for batch in (1, BATCH):
            best_wall = best_cpu = float("inf")
            for rnd in range(ROUNDS):
                tag = f"{os.urandom(4).hex()}-{rnd}"
                commits = [_commit(i, tag) for i in range(n)]

                async def both(c: Commit) -> None:
                    await store.snapshot(_query(c))
                    await store.commit(c)

                calls = [functools.partial(both, c) for c in commits]
                wall, cpu = await _cpu_per_call(calls, batch)
                best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
            how = "one at a time" if batch == 1 else f"{batch} at a time (auto-pipelined)"
            rows.append({"name": f"{_kind(redis_url)} snapshot + commit, {how}",
                         "us": round(best_cpu, 2),
                         "note": f"client CPU; wall {best_wall:.0f} µs per pair"})
    finally:
        await store.close()
    return rows
