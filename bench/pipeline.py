"""Micro-benchmarks above the primitives: the decision pipeline and the store round trip.

- `pipeline_rows`: `Decider.validate` in-process, HTTP excluded — with the memory store
  (pure CPU of a decision) and with the Redis store (client CPU, 32 requests at a time,
  as a busy server interleaves them). The Redis URL may be a `rediscluster://` one: the
  rows then measure the Redis Cluster store.
- `store_rows`: one snapshot + one commit, alone (the latency floor of a validation's
  two round trips) and 32 at a time (the client CPU that auto-pipelining leaves).

Figures are CPU µs of this process (`time.process_time`) per validation, the best of 3
rounds; the Redis servers' own CPU is other processes': a row on Redis also gives, from
their INFO over its best round (bench/redis_stats.py), the Redis CPU per validation, and
from one more round the commands (round trips) the client sent per validation. Rows: bus
card taps (new cards, or `returning card`: the same cards again), QR scans, and entries
at a spot (`… at a spot`: new holders, a capacity guard, which a Redis Cluster pays
with a reservation in the spot's slot).

    python -m bench.pipeline --store rediscluster://127.0.0.1:7000 \\
        --kinds "card,returning card,QR ES256,card at a spot,QR ES256 at a spot"
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import creds
from bench.redis_stats import ServerCounters
from validator.config_folder import load_config
from validator.credentials.kinds import build_verifiers
from validator.credentials.ssc_card import CardTap
from validator.decide import Decider, QrScan, ValidationRequest
from validator.keyset import load_keyset
from validator.policy.engine import PolicyEngine
from validator.state import open_store
from validator.state.memory import MemoryStore
from validator.state.resp import Arg, RespClient
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


@dataclass(frozen=True)
class Kind:
    """A row's traffic: the credential, the terminal it is shown at, and whether its
    cards come back (`returning`: every card's first tap is made in an untimed round,
    so the timed rounds are the same cards again, counters rising)."""

    credential: str  # "card", "QR ES256", "QR EdDSA" (device keys under ES256), "QR SM2"
    terminal: str = creds.TERMINAL
    returning: bool = False


SPOT_GATE = "T-GATE-S01-01"  # spot S01: an entry reserves a place of its daily capacity
KINDS = {
    "card": Kind("card"),
    "returning card": Kind("card", returning=True),
    "QR ES256": Kind("QR ES256"),
    "QR EdDSA": Kind("QR EdDSA"),
    "QR SM2": Kind("QR SM2"),
    "card at a spot": Kind("card", SPOT_GATE),
    "QR ES256 at a spot": Kind("QR ES256", SPOT_GATE),
}
SIZES = {"card": 2000, "returning card": 2000, "card at a spot": 1000}  # else 500


def validation_requests(
    keys_dir: Path, config_dir: Path, kind: str | Kind, n: int, *, now: int | None = None,
    first_serial: int | None = None, tap: int = 0,
) -> list[ValidationRequest]:
    """`n` requests of `kind` made at `now`; returning cards: serials from
    `first_serial`, each card's tap number `tap` + 1."""
    k = (KINDS.get(kind) or Kind(kind)) if isinstance(kind, str) else kind
    terminal = load_config(config_dir).terminals[k.terminal]
    now = int(time.time()) if now is None else now
    scanned = dt.datetime.fromtimestamp(now, dt.UTC)
    credentials: list[QrScan | CardTap]
    if k.credential == "card":
        taps = (creds.card_taps(keys_dir, n, now, k.terminal) if not k.returning else
                [t for _, t in creds.returning_card_taps(
                    keys_dir, range(tap * n, (tap + 1) * n), now, [k.terminal],
                    first_serial=first_serial or 0, pool=n)])
        credentials = [CardTap(**{f: v for f, v in t.items() if f != "type"}) for t in taps]
    else:
        alg: creds.Alg = "EdDSA" if k.credential.endswith("EdDSA") else \
            "SM2" if k.credential.endswith("SM2") else "ES256"
        # At a spot, new holders each time: an entry a holder makes once a day, not again.
        first = creds.random_serial() % 10**7 if k.terminal == SPOT_GATE else 0
        credentials = [QrScan(c["qr"]) for c in creds.qr_codes(
            keys_dir, n, now, device_alg=alg, issuer_alg="SM2" if alg == "SM2" else "ES256",
            first=first)]
    return [ValidationRequest(
        terminal_id=terminal.id, operator=terminal.operator, venue=terminal.venue,
        request_id=os.urandom(9).hex(), scanned_at=scanned, scanned_at_text=scanned.isoformat(),
        credential=credential, companion=False, body_sha256=os.urandom(32).hex(),
    ) for credential in credentials]


@dataclass
class Measured:
    us: float  # this process's CPU µs per validation, the best round
    commands: float | None = None  # Redis commands per validation in that round
    redis_us: float | None = None  # Redis's CPU µs per validation in that round


class _OpenHours:
    """The system clock moved to 10:00 local time today, if it is not within 08:00-17:00
    (a spot is open then: its entries reserve capacity, the path a spot row measures)."""

    def __init__(self, engine: PolicyEngine) -> None:
        now = time.time()
        local = engine.local_from_unix(now)
        at_ten = local.replace(hour=10, minute=0, second=0, microsecond=0)
        self.offset = 0.0 if 8 <= local.hour < 17 else at_ten.timestamp() - now

    def now(self) -> float:
        return time.time() + self.offset


async def _pipeline(keys_dir: Path, config_dir: Path, store: Store, kind: str, n: int,
                    counters: ServerCounters | None = None) -> Measured:
    keyset, engine = load_keyset(keys_dir), load_config(config_dir).engine
    clock = _OpenHours(engine)
    decider = Decider(engine=engine, verifiers=build_verifiers(keyset),
                      store=store, clock=clock)
    best = Measured(float("inf"))
    serial = creds.random_serial()
    returning = KINDS[kind].returning
    # the timed rounds (a returning kind's first is untimed), then one to count commands
    for rnd in range(ROUNDS + returning + (counters is not None)):
        now = int(clock.now())
        requests = validation_requests(keys_dir, config_dir, kind, n, now=now,
                                       first_serial=serial, tap=rnd)
        today = engine.local_date(now)
        for req in requests:  # a returning holder: level-1 and card-key caches are warm
            decider._verify(req, now, today)
        calls = [functools.partial(decider.validate, req) for req in requests]
        if rnd == ROUNDS + returning:
            with _Counting() as sent:
                await _cpu_per_call(calls, BATCH)
            best.commands = sent.calls / n
            break
        before = counters.read() if counters is not None else None
        cpu = (await _cpu_per_call(calls, BATCH))[1]
        if returning and rnd == 0:
            continue  # the cards' first taps: what makes them returning
        if cpu < best.us:
            best = Measured(cpu)
            if counters is not None and before is not None:
                best.redis_us = (counters.read() - before).cpu_s / n * 1e6
    return best


class _Counting:
    """`with _Counting() as sent:` counts the commands the lean Redis client sends (every
    decision-path call, on one Redis and on a cluster) in `sent.calls`. Only in a round
    that is not timed: the count's own cost stays out of the CPU figures."""

    def __init__(self) -> None:
        self.calls = 0
        self._plain = RespClient.execute

    def __enter__(self) -> _Counting:
        plain = self._plain

        def counted(client: RespClient, *args: Arg) -> Awaitable[Any]:
            self.calls += 1
            return plain(client, *args)

        RespClient.execute = counted  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        RespClient.execute = self._plain  # type: ignore[method-assign]


async def pipeline_rows(keys_dir: Path, config_dir: Path, redis_url: str | None,
                        kinds: Sequence[str] = ("card", "QR ES256", "QR EdDSA", "QR SM2"),
                        ) -> list[Row]:
    rows = []
    stores: list[tuple[str, Callable[[], Awaitable[Store]]]] = [("memory store", _memory)]
    if redis_url is not None:
        stores.append((f"{_kind(redis_url)} store, client CPU", lambda: open_store(redis_url)))
    for label, make in stores:
        counters = None if label == "memory store" or redis_url is None else \
            ServerCounters(redis_url)
        for kind in kinds:
            store = await make()
            try:
                got = await _pipeline(keys_dir, config_dir, store, kind, SIZES.get(kind, 500),
                                      counters)
            finally:
                await store.close()
            note = "verify, snapshot, policy, ledger record, commit"
            if got.commands is not None and got.redis_us is not None:
                note += (f"; per validation {got.commands:.2f} Redis commands (round trips), "
                         f"{got.redis_us:.0f} µs Redis CPU")
            rows.append({"name": f"decision without HTTP, {kind} ({label})",
                         "us": round(got.us, 2), "note": note,
                         "redis_commands": got.commands, "redis_us": got.redis_us})
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


def main() -> None:
    import argparse
    import tempfile

    from validator.keygen import init_keyset

    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", help="redis:// or rediscluster:// URL (default: memory only)")
    p.add_argument("--kinds", default="card,QR ES256", help=", ".join(KINDS))
    p.add_argument("--keys", type=Path, help="a key set (default: a new one)")
    args = p.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := set(kinds) - set(KINDS):
        p.error(f"unknown kinds {sorted(unknown)}: each one of {', '.join(KINDS)}")
    config = Path(__file__).resolve().parents[1] / "config"
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        keys = args.keys or Path(tmp) / "keys"
        if args.keys is None:
            init_keyset(keys, region=creds.REGION, terminal_ids=[creds.TERMINAL, SPOT_GATE])
        for row in asyncio.run(pipeline_rows(keys, config, args.store, kinds)):
            print(f"{row['name']:<72} {row['us']:8.1f} µs  {row['note']}", flush=True)


if __name__ == "__main__":
    main()
