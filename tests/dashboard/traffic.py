"""Simulated terminals for the browser tests: a steady mix of taps, QR scans and faults.

The traffic runs in a thread of its own with its own event loop, so a synchronous
Playwright test can watch the page while decisions keep arriving; `call` runs one
coroutine (a tap of the test's own card, say) on that loop and waits for its answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from terminals_sim.card import Card, card_id_for, make_ssn, new_un
from terminals_sim.ecard import Phone, generate_key
from terminals_sim.terminal import Reply, TerminalClient
from tests.web.harness import TZ, Holder, load_service_keys
from validator.holders.ref import holder_ref

T = TypeVar("T")
AGES = (22, 35, 48, 61, 66, 71, 76, 83)  # a few under and over the senior thresholds


class Traffic:
    """Terminals of `terminal_ids` sending about `rate_per_s` requests per second."""

    def __init__(self, url: str, keys_dir: Path, terminal_ids: list[str],
                 *, rate_per_s: float = 25.0, seed: int = 7,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock  # the server's notion of now: signatures and scans follow it
        self.keys = load_service_keys(keys_dir)
        self.terminal_ids = terminal_ids
        self.rate_per_s = rate_per_s
        self.random = random.Random(seed)
        self.serial = 0
        self.sent = 0
        self.holders = [self.holder(AGES[i % len(AGES)]) for i in range(60)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="traffic",
                                        daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._task: concurrent.futures.Future[None] | None = None

    # --- lifecycle (called from the test thread) ---

    def start(self) -> None:
        self._thread.start()
        self.call(self._open())
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # --- holders and requests ---

    def holder(self, age: int) -> Holder:
        """A holder aged `age` with a new card and e-card from the key set's issuers."""
        self.serial += 1
        today = dt.datetime.fromtimestamp(self.clock(), TZ).date()
        birth = dt.date(today.year - age - 1, 12, 31) if today.month < 12 else \
            dt.date(today.year - age, 1, 1)
        ssn = make_ssn("369900", birth, self.serial % 1000)
        ref = holder_ref(self.keys["pepper"], ssn)
        card_no = f"B{self.serial:08d}"
        card = Card(region="369900", ssn=ssn, card_no=card_no,
                    card_id=card_id_for("369900", 5000 + self.serial), issued="20240101",
                    expires="20351231", kv=1, master_key=self.keys["master_keys"][("369900", 1)])
        issuer = self.keys["issuers"][self.serial % len(self.keys["issuers"])]
        device = generate_key(issuer.alg)
        now = int(self.clock())
        level1 = issuer.issue(bytes.fromhex(ref), int(birth.strftime("%Y%m%d")), card_no,
                              "369900", device.public_key(), iat=now - 86400,
                              exp=now + 30 * 86400)
        return Holder(ssn, ref, birth, card, Phone(level1, device, issuer.alg), "369900")

    async def tap(self, terminal_id: str, holder: Holder) -> Reply:
        now = int(self.clock())
        return await self._send(terminal_id, holder.card.tap(terminal_id, now, new_un()))

    async def _send(self, terminal_id: str, credential: dict[str, Any],
                    secret: bytes | None = None) -> Reply:
        assert self._session is not None
        client = TerminalClient(self._session, self.url, terminal_id,
                                secret or self.keys["secrets"][terminal_id], retries=0)
        now = int(self.clock())
        scanned_at = dt.datetime.fromtimestamp(now, TZ).isoformat()
        self.sent += 1
        return await client.post(client.body(credential, scanned_at), now=now)

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            # the server may be slow or gone at the end of a test: keep going regardless
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await self._one()
            await asyncio.sleep(max(0.0, 1 / self.rate_per_s - (time.monotonic() - started)))

    async def _one(self) -> None:
        """One request of the mix: mostly good taps and scans, some faults of each kind."""
        rnd = self.random
        holder, terminal = rnd.choice(self.holders), rnd.choice(self.terminal_ids)
        roll, now = rnd.random(), int(self.clock())
        if roll < 0.62:
            await self.tap(terminal, holder)
        elif roll < 0.84:
            await self._send(terminal, holder.qr(now))
        elif roll < 0.90:  # the same QR shown twice: the second is a replay
            qr = holder.qr(now)
            await self._send(terminal, qr)
            await self._send(rnd.choice(self.terminal_ids), qr)
        elif roll < 0.93:  # a skimmed copy of the card, behind the original's counter
            twin = holder.card.clone(atc=max(0, holder.card.atc - 2))
            await self._send(terminal, twin.tap(terminal, now, new_un()))
        elif roll < 0.97:  # a screenshot of an old QR
            await self._send(terminal, holder.qr(now - 180))
        else:  # a box on the network pretending to be a registered reader
            await self._send(terminal, holder.qr(now), secret=b"\x42" * 32)
