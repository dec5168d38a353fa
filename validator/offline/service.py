"""`BundleService`: the bundle a terminal asks for, full or since a sequence number.

The lists are re-read from the store at most every `refresh_s` (one reader at a time;
concurrent askers wait for it) and the signed, compressed full bundle is kept until the
next refresh, so a thousand terminals re-syncing cost one read and one signature.

A refresh must never hold up a gate's answer: the validator decides on the same event
loop. The store is read a page at a time with the loop free between pages, and the CPU
work — sealing entries, comparing generations, CBOR, the signature, gzip — runs in a
worker thread (`asyncio.to_thread`), so the loop waits at most the interpreter's switch
interval (5 ms) for it. bench/bundle_size.py reports the longest stall it saw.

Sequence numbers are the Unix milliseconds at which a generation's read began, strictly
increasing in a process. Every process of a deployment derives the same salt for a UTC
day, so a terminal may sync from any of them; a process that cannot answer a delta
(`since` before its first generation of the day, or from another day) answers in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from validator.clock import Clock
from validator.config_folder import Config
from validator.offline import eligibility
from validator.offline.bundle import encode, fixed_part
from validator.offline.config import OfflineConfig
from validator.offline.content import History, HolderPage, Sealer, read_lists
from validator.state.store import Store

__all__ = ["Bundle", "BundleService"]


class Bundle:
    """A bundle's bytes on the wire and what the metrics need of it."""

    __slots__ = ("body", "full", "seq")

    def __init__(self, body: bytes, seq: int, full: bool) -> None:
        self.body, self.seq, self.full = body, seq, full


class BundleService:
    def __init__(self, *, store: Store, holders: HolderPage, config: Config,
                 offline: OfflineConfig, key: Ed25519PrivateKey,
                 trust_jwks: list[dict[str, Any]], clock: Clock) -> None:
        self._store, self._holders = store, holders
        self._config, self._offline = config, offline
        self._key, self._trust, self._clock = key, trust_jwks, clock
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        self._seed = eligibility.seed_of(raw)
        self._lock = asyncio.Lock()
        self._history: History | None = None
        self._sealer: Sealer | None = None
        self._read_at = 0.0
        self._full: Bundle | None = None
        self._deltas: dict[int, Bundle] = {}
        self.on_refresh: Callable[[int], None] | None = None

    @property
    def latest_seq(self) -> int | None:
        return None if self._history is None else self._history.seq

    async def bundle(self, since: int | None = None) -> Bundle:
        """The current bundle: a delta since `since` when this process can, else full."""
        async with self._lock:
            now = self._clock.now()
            if self._history is None or now - self._read_at >= self._offline.refresh_s:
                await self._refresh(now)
            history = self._history
            assert history is not None and self._full is not None
            if since is None or not history.covers(since):
                return self._full
            delta = self._deltas.get(since)
            if delta is None:
                delta = self._deltas[since] = await asyncio.to_thread(
                    self._delta, history, since)
            return delta

    def _delta(self, history: History, since: int) -> Bundle:
        upserts, removed = history.delta(since)
        return Bundle(self._encode(history, upserts, removed, base=since), history.seq,
                      full=False)

    async def _refresh(self, now: float) -> None:
        salt = eligibility.epoch_salt(self._seed, now)
        seq = int(now * 1000)
        if self._sealer is None or self._sealer.salt != salt:
            self._sealer, self._history = Sealer(salt), None
        today = self._config.engine.local_date(now)
        lists = await read_lists(self._store.list_blocks, self._holders, self._sealer, today)
        history = self._history
        if history is None:
            history = History(first_seq=seq, seq=seq)
        else:
            seq = max(seq, history.seq + 1)

        def build() -> Bundle:  # in a worker thread: the lock keeps everyone else out
            history.advance(seq, lists)
            return Bundle(self._encode(history, history.lists, None), seq, full=True)

        self._full = await asyncio.to_thread(build)
        self._history, self._read_at, self._deltas = history, now, {}
        if self.on_refresh is not None:
            self.on_refresh(seq)

    def _encode(self, history: History, lists: dict[Any, Any], removed: set[Any] | None,
                base: int | None = None) -> bytes:
        assert self._sealer is not None
        iat = int(history.seq // 1000)
        fixed = fixed_part(self._config, self._offline, self._trust, iat)
        return encode(self._key, seq=history.seq, iat=iat,
                      exp=iat + self._offline.max_offline_age_s, salt=self._sealer.salt,
                      fixed=fixed, lists=lists, removed=removed, base=base)
